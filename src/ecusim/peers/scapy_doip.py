#!/usr/bin/python3
"""scapy's UDS_DoIPSocket (Debian python3-scapy 2.5) against Aloft's DoIP edge node.

Routing activation, identification DIDs of the ECU at TARGET, then security access: extended
session, the preconditions routine, the programming session, 27 01 for the seed and 27 02 with
HMAC-SHA256 of it under SECRET (hex). Prints one fact per line. Usage:
scapy_doip.py HOST PORT TARGET SECRET
"""
import hashlib
import hmac
import logging
import sys

from scapy.contrib.automotive.doip import UDS_DoIPSocket
from scapy.contrib.automotive.uds import UDS, UDS_DSC, UDS_RC, UDS_RDBI, UDS_SA

logging.getLogger("scapy").setLevel(logging.ERROR)
host, port, target, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0), sys.argv[4]
sock = UDS_DoIPSocket(ip=host, port=port, source_address=0x0E80, target_address=target)


def ask(pkt):
    answer = sock.sr1(pkt, timeout=3, verbose=False)
    if answer is None:
        print("no answer to " + bytes(pkt).hex())
        sys.exit(1)
    return bytes(answer)


try:
    print("VIN: " + ask(UDS() / UDS_RDBI(identifiers=[0xF190]))[3:].decode())
    print("software: " + ask(UDS() / UDS_RDBI(identifiers=[0xF189]))[3:].decode())
    print("10 03: " + ask(UDS() / UDS_DSC(diagnosticSessionType=3))[:2].hex())
    print("31 01 0203: " + ask(UDS() / UDS_RC(routineControlType=1, routineIdentifier=0x0203)).hex())
    print("10 02: " + ask(UDS() / UDS_DSC(diagnosticSessionType=2))[:2].hex())
    seed = ask(UDS() / UDS_SA(securityAccessType=1))[2:]
    print(f"seed bytes: {len(seed)}")
    wrong = ask(UDS() / UDS_SA(securityAccessType=2, securityKey=b"\0" * 32))
    print("wrong key: " + wrong.hex())
    seed = ask(UDS() / UDS_SA(securityAccessType=1))[2:]
    key = hmac.new(bytes.fromhex(secret), seed, hashlib.sha256).digest()
    print("27 02: " + ask(UDS() / UDS_SA(securityAccessType=2, securityKey=key)).hex())
finally:
    sock.close()
