"""A simulated ESP32 ROM serial loader on a pseudo-terminal, for flashing tests.

It speaks the ROM's side of esptool's protocol: SLIP frames, SYNC, register reads and
writes (with the SPI peripheral's user commands, enough for a flash ID and SFDP), SPI
attach and parameters, FLASH_BEGIN/DATA/END, and SPI_FLASH_MD5 answered as the ROM does
(32 hex characters, not the stub's 16 raw bytes). GET_SECURITY_INFO is refused as the
ESP32 ROM refuses it, so esptool falls back to the chip magic register. Everything
written lands in `flash`, a bytearray the test can read back.

A pty has no DTR/RTS lines, so esptool must run with --before no-reset --after no-reset,
and --no-stub so the ROM protocol (not the flasher stub's) is used.
"""
from __future__ import annotations

import hashlib
import os
import struct
import threading
import tty

SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD

# Opcodes (esptool's ESP_CMDS).
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
SPI_SET_PARAMS, SPI_ATTACH, CHANGE_BAUDRATE = 0x0B, 0x0D, 0x0F
SPI_FLASH_MD5, GET_SECURITY_INFO = 0x13, 0x14

ESP32_MAGIC_REG, ESP32_MAGIC = 0x40001000, 0x00F01D83
SPI_BASE = 0x3FF42000  # the ESP32's SPI0/1 controller, where esptool runs user commands
SPI_CMD, SPI_ADDR, SPI_USR2, SPI_W0 = SPI_BASE + 0x00, SPI_BASE + 0x04, SPI_BASE + 0x24, SPI_BASE + 0x80
SPI_CMD_USR = 1 << 18
UART_CLKDIV_REG = 0x3FF40014
CHECKSUM_SEED = 0xEF
INVALID_MESSAGE = 0x05  # the ROM's error code for a command it does not know

# A 4 MB Winbond W25Q32: manufacturer 0xEF, memory type 0x40, capacity 0x16 (2^22 bytes).
JEDEC_IDS = {4 << 20: 0x1640EF, 8 << 20: 0x1740EF, 16 << 20: 0x1840EF, 2 << 20: 0x1540EF}


def slip_encode(payload: bytes) -> bytes:
    out = bytearray([SLIP_END])
    for b in payload:
        if b == SLIP_END:
            out += bytes([SLIP_ESC, SLIP_ESC_END])
        elif b == SLIP_ESC:
            out += bytes([SLIP_ESC, SLIP_ESC_ESC])
        else:
            out.append(b)
    out.append(SLIP_END)
    return bytes(out)


class EspRomSim:
    """The ROM loader of an ESP32 with `flash_size` bytes of erased flash, on a pty.

    Use as a context manager; `port` is the path to give esptool. `log` lists the opcodes
    received, `writes` the (offset, bytes) regions erased by FLASH_BEGIN."""

    def __init__(self, flash_size: int = 4 << 20, magic: int = ESP32_MAGIC):
        self.flash = bytearray(b"\xff" * flash_size)
        # esptool estimates the crystal from the UART divider at its baud rate: 347 at 115200
        # baud is a 40 MHz crystal, what an ESP32-WROOM-32 has.
        self.regs: dict[int, int] = {ESP32_MAGIC_REG: magic, UART_CLKDIV_REG: 347}
        self.log: list[int] = []
        self.writes: list[tuple[int, int]] = []
        self._begin = None  # (offset, block_size, blocks) of the FLASH_BEGIN in progress
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes pass untouched
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        os.close(self._slave)  # the master's reads then fail with EIO and the thread ends
        self._thread.join(5)
        os.close(self._master)

    # ---- transport --------------------------------------------------------------------

    def _serve(self) -> None:
        frame, in_frame, esc = bytearray(), False, False
        while not self._stop.is_set():
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                return
            if not chunk:
                return
            for b in chunk:
                if not in_frame:
                    if b == SLIP_END:
                        in_frame, frame = True, bytearray()
                    continue
                if esc:
                    frame.append(SLIP_END if b == SLIP_ESC_END else SLIP_ESC if b == SLIP_ESC_ESC else b)
                    esc = False
                elif b == SLIP_ESC:
                    esc = True
                elif b == SLIP_END:
                    if frame:  # an empty frame is the END of one frame and the start of the next
                        self._packet(bytes(frame))
                        in_frame = False
                else:
                    frame.append(b)

    def _reply(self, op: int, val: int = 0, data: bytes = b"", status: int = 0, error: int = 0) -> None:
        # The ESP32 ROM appends four status bytes: status, error, and two reserved.
        body = data + bytes([status, error, 0, 0])
        os.write(self._master, slip_encode(struct.pack("<BBHI", 1, op, len(body), val) + body))

    # ---- commands ---------------------------------------------------------------------

    def _packet(self, p: bytes) -> None:
        if len(p) < 8 or p[0] != 0:
            return
        _, op, size, chk = struct.unpack_from("<BBHI", p)
        data = p[8 : 8 + size]
        self.log.append(op)
        if op == SYNC:
            for _ in range(8):  # the ROM answers a SYNC eight times, with a non-zero value
                self._reply(op, val=0x20120707)
        elif op == READ_REG:
            (addr,) = struct.unpack_from("<I", data)
            self._reply(op, val=self.regs.get(addr, 0))
        elif op == WRITE_REG:
            for i in range(0, len(data) - 15, 16):
                addr, value, mask, _delay = struct.unpack_from("<IIII", data, i)
                self.regs[addr] = (self.regs.get(addr, 0) & ~mask) | (value & mask)
                if addr == SPI_CMD and value & SPI_CMD_USR:
                    self._spi_user_command()
            self._reply(op)
        elif op in (SPI_ATTACH, SPI_SET_PARAMS, CHANGE_BAUDRATE, MEM_BEGIN, MEM_DATA, MEM_END):
            self._reply(op)
        elif op == FLASH_BEGIN:
            erase, blocks, block_size, offset = struct.unpack_from("<IIII", data)
            if offset + erase > len(self.flash):
                self._reply(op, status=1, error=0x06)
                return
            self.flash[offset : offset + erase] = b"\xff" * erase
            self.writes.append((offset, erase))
            self._begin = (offset, block_size, blocks)
            self._reply(op)
        elif op == FLASH_DATA:
            n, seq = struct.unpack_from("<II", data)
            payload = data[16 : 16 + n]
            check = CHECKSUM_SEED
            for b in payload:
                check ^= b
            if self._begin is None or check != chk or seq >= self._begin[2]:
                self._reply(op, status=1, error=0x07)  # the ROM's "bad data checksum"
                return
            at = self._begin[0] + seq * self._begin[1]
            self.flash[at : at + n] = payload
            self._reply(op)
        elif op == FLASH_END:
            self._begin = None
            self._reply(op)
        elif op == SPI_FLASH_MD5:
            addr, n = struct.unpack_from("<II", data)
            digest = hashlib.md5(self.flash[addr : addr + n]).hexdigest().encode()
            self._reply(op, data=digest)  # the ROM sends hex text; the stub 16 raw bytes
        else:  # GET_SECURITY_INFO and every stub-only command
            self._reply(op, status=1, error=INVALID_MESSAGE)

    def _spi_user_command(self) -> None:
        """Run the flash command esptool set up in the SPI registers; only the reads it
        uses to identify the flash are needed."""
        cmd = self.regs.get(SPI_USR2, 0) & 0xFF
        if cmd == 0x9F:  # RDID
            self.regs[SPI_W0] = JEDEC_IDS.get(len(self.flash), 0x1640EF)
        elif cmd == 0x5A:  # read SFDP: the signature "SFDP" at address 0
            addr = self.regs.get(SPI_ADDR, 0) >> 8
            self.regs[SPI_W0] = 0x50444653 if addr == 0 else 0
        else:  # status registers and the rest read as zero
            self.regs[SPI_W0] = 0
        self.regs[SPI_CMD] = 0  # done: esptool polls until the USR bit clears
