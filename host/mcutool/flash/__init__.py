"""Boards and flashing: partition tables, UF2, esptool, mpremote."""
