"""The host side of the serial link to a board (real or simulated)."""
