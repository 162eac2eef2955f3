#!/usr/bin/python3
"""python-can's "socketcand" interface against Aloft's bus hub (run by socketcand_test).

Sends frames on the bus named in argv[3]; the Aloft node on that bus answers each with the
identifier + 8 and the bytes reversed. Prints what came back, one line per frame:
"<id hex> <extended 0|1> <data hex>".
"""
import sys

import can

host, port, channel = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bus = can.Bus(interface="socketcand", channel=channel, host=host, port=port)
try:
    frames = [
        can.Message(arbitration_id=0x7E0, data=[0x02, 0x10, 0x03, 0, 0, 0, 0, 0],
                    is_extended_id=False),
        can.Message(arbitration_id=0x18DA10F1, data=[1, 2, 3], is_extended_id=True),
        can.Message(arbitration_id=0x123, data=[], is_extended_id=False),
    ]
    for m in frames:
        bus.send(m)
        answer = bus.recv(timeout=5)
        if answer is None:
            print("timeout")
            sys.exit(1)
        print(f"{answer.arbitration_id:X} {len(answer.data)} {answer.data.hex().upper()}")
finally:
    bus.shutdown()
