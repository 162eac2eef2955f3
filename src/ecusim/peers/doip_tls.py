#!/usr/bin/python3
"""DoIP over TLS with Python's ssl module against Aloft's DoIP entity (one that requires TLS).

On the plain port, routing activation must be answered 0x07 (TLS required); over TLS (trusting
CA, the entity's certificate) it is 0x10 and a diagnostic message reads the ECU's VIN. Prints one
fact per line. Usage: doip_tls.py HOST PLAIN_PORT TLS_PORT CA TARGET
"""
import socket
import ssl
import struct
import sys

host, plain_port, tls_port, ca, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4], int(sys.argv[5], 0)


def message(ptype, payload):
    return struct.pack(">BBHI", 2, 0xFD, ptype, len(payload)) + payload


def read_message(s):
    header = b""
    while len(header) < 8:
        chunk = s.recv(8 - len(header))
        if not chunk:
            return None, None
        header += chunk
    _, _, ptype, length = struct.unpack(">BBHI", header)
    payload = b""
    while len(payload) < length:
        payload += s.recv(length - len(payload))
    return ptype, payload


activation = message(0x0005, struct.pack(">HB", 0x0E80, 0) + b"\0\0\0\0")

with socket.create_connection((host, plain_port), timeout=5) as plain:
    plain.sendall(activation)
    ptype, payload = read_message(plain)
    print(f"plain activation: 0x{payload[4]:02X}")

context = ssl.create_default_context(cafile=ca)
with socket.create_connection((host, tls_port), timeout=5) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        print(f"tls version: {tls.version()}")
        tls.sendall(activation)
        ptype, payload = read_message(tls)
        print(f"tls activation: 0x{payload[4]:02X}")
        tls.sendall(message(0x8001, struct.pack(">HH", 0x0E80, target) + b"\x22\xF1\x90"))
        while True:
            ptype, payload = read_message(tls)
            if ptype == 0x8001:
                print("VIN: " + payload[7:].decode())
                break
