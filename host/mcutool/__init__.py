"""mcutool: int8 CNNs on microcontrollers under MicroPython."""
__version__ = "0.1.0"
