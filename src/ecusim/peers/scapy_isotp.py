#!/usr/bin/python3
"""scapy (Debian python3-scapy 2.5) against a simulated car through Aloft's bus hub.

Its ISO-TP soft socket runs over python-can's socketcand interface (PythonCANSocket); it reads
the engine ECU's VIN and software version with UDS packets, and its UDS_Scanner enumerates the
services and sessions the ECU offers. Prints what it found, one fact per line, for the C++ test
to check. Usage: scapy_isotp.py HOST PORT BUS
"""
import logging
import sys

from scapy.config import conf

conf.contribs["CANSocket"] = {"use-python-can": True}
conf.contribs["ISOTP"] = {"use-can-isotp-kernel-module": False}

from scapy.contrib.automotive.uds import UDS, UDS_RDBI, UDS_DSC  # noqa: E402
from scapy.contrib.automotive.uds_scan import (  # noqa: E402
    UDS_DSCEnumerator, UDS_Scanner, UDS_ServiceEnumerator)
from scapy.contrib.cansocket_python_can import PythonCANSocket  # noqa: E402
from scapy.contrib.isotp.isotp_soft_socket import ISOTPSoftSocket  # noqa: E402

logging.getLogger("scapy").setLevel(logging.ERROR)
host, port, bus = sys.argv[1], int(sys.argv[2]), sys.argv[3]
can = PythonCANSocket(interface="socketcand", channel=bus, host=host, port=port)
sock = ISOTPSoftSocket(can, tx_id=0x7E0, rx_id=0x7E8, basecls=UDS, padding=True)
try:
    for did in (0xF190, 0xF189):
        answer = sock.sr1(UDS() / UDS_RDBI(identifiers=[did]), timeout=3, verbose=False)
        if answer is None:
            print(f"DID {did:04X}: no answer")
            continue
        print(f"DID {did:04X}: {bytes(answer)[3:].decode('ascii', 'replace')}")
    answer = sock.sr1(UDS() / UDS_DSC(diagnosticSessionType=3), timeout=3, verbose=False)
    print(f"10 03: {bytes(answer).hex()}" if answer else "10 03: no answer")
    answer = sock.sr1(UDS() / UDS_DSC(diagnosticSessionType=1), timeout=3, verbose=False)

    scanner = UDS_Scanner(sock, test_cases=[UDS_ServiceEnumerator, UDS_DSCEnumerator],
                          UDS_ServiceEnumerator_kwargs={"timeout": 0.3},
                          UDS_DSCEnumerator_kwargs={"timeout": 0.5, "delay_state_change": 0})
    scanner.scan(timeout=120)
    services = set()
    for tc in scanner.configuration.test_cases:
        for r in tc.results_with_positive_response + tc.results_with_negative_response:
            if r.resp is not None and isinstance(tc, UDS_ServiceEnumerator):
                resp = bytes(r.resp)
                if not (resp[0] == 0x7F and resp[2] == 0x11):
                    services.add(bytes(r.req)[0])
    print("services: " + " ".join(f"{s:02X}" for s in sorted(services)))
    sessions = set()
    for state in scanner.state_paths:
        for s in state:
            sessions.add(str(s))
    print(f"states: {len(scanner.state_paths)}")
finally:
    sock.close()
    can.close()
