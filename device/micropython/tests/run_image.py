# Runs an mcutool flash image through the mcunet module both ways (run() and the
# begin/need/feed row-band path) and prints the outputs, which must agree.
#
#   micropython run_image.py model.mcu input0.raw [input1.raw ...]
#
# Each input file holds device input k's int8 bytes (NHWC, top row first). Works on the
# unix port with mcunet built in, or with mcunet.mpy on sys.path.
import sys

import mcunet


def load(path):
    with open(path, "rb") as f:
        return f.read()


def signed(buf):
    return [b - 256 if b > 127 else b for b in buf]


def main(argv):
    if len(argv) < 3:
        print("usage: run_image.py model.mcu input0.raw [...]")
        return 2
    image = bytearray(load(argv[1]))  # a heap copy: word-aligned, read in place
    inputs = [load(p) for p in argv[2:]]
    m = mcunet.Model(image)
    print("name", m.name, "arena_size", m.arena_size, "streamed", m.streamed)
    print("input_spec", m.input_spec)
    print("output_spec", m.output_spec)
    info = m.info()
    print("info", sorted(info.items()))

    arena = bytearray(m.arena_size)  # allocated once, as a board would
    outs = m.run(inputs if len(inputs) > 1 else inputs[0], arena=arena)
    whole = [signed(o) for o in outs]
    print("run()", whole)

    m.begin(arena)
    # inputs the plan keeps whole go in before anything runs; streamed ones are fed below
    for k in range(len(m.input_spec)):
        try:
            m.set_input(k, inputs[k])
        except ValueError:
            pass  # a streamed input
    bands = 0
    while True:
        want = m.need()
        if want is None:
            break
        k, r0, r1 = want
        shape = m.input_spec[k][0]
        row = shape[2] * shape[3]
        done = m.feed(k, r0, r1, memoryview(inputs[k])[r0 * row : r1 * row])
        bands += 1
        if done:
            break
    streamed = [signed(m.output(k)) for k in range(len(m.output_spec))]
    print("feed()", streamed, "bands", bands)
    print("agree", streamed == whole)
    return 0


sys.exit(main(sys.argv))
