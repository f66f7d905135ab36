# Runs at boot: serve the mcutool protocol on USB-CDC (see mcuapp.py).
# Leave it for the REPL with mpremote (its Ctrl-C is caught between frames).
import mcuapp

mcuapp.main()
