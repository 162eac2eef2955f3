#!/usr/bin/python3
"""UDS Authentication (0x29, APCE) with scapy's UDS_AUTH / UDS_AUTHPR packets (Debian
python3-scapy 2.5) and the signature by python3-cryptography, against Aloft's simulated ECU at
TARGET behind the DoIP edge node (docs/identity.md).

Extended session, preconditions, programming session; RequestDownload before authenticating
(0x34 expected); 29 01 with a foreign chain (0x52 expected); 29 01 with CHAIN (DER certificates,
the tester's first) for the ECU's challenge; 29 03 with the ECDSA P-256 signature of the proof
message under KEY (PEM); RequestDownload again. Prints one fact per line. Usage:
scapy_auth.py HOST PORT TARGET CHAIN KEY FOREIGN_CHAIN
"""
import logging
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from scapy.contrib.automotive.doip import UDS_DoIPSocket
from scapy.contrib.automotive.uds import UDS, UDS_AUTH, UDS_AUTHPR, UDS_DSC, UDS_RC, UDS_RD

logging.getLogger("scapy").setLevel(logging.ERROR)
host, port, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0)
chain = open(sys.argv[4], "rb").read()
key = serialization.load_pem_private_key(open(sys.argv[5], "rb").read(), password=None)
foreign = open(sys.argv[6], "rb").read()
LABEL = b"aloft uds 0x29 proof of ownership v1"
sock = UDS_DoIPSocket(ip=host, port=port, source_address=0x0E80, target_address=target)


def ask(pkt):
    answer = sock.sr1(pkt, timeout=3, verbose=False)
    if answer is None:
        print("no answer to " + bytes(pkt).hex())
        sys.exit(1)
    return answer


download = UDS() / UDS_RD(dataFormatIdentifier=0, memorySizeLen=4, memoryAddressLen=4,
                          memoryAddress4=0x80000, memorySize4=0x1000)
try:
    ask(UDS() / UDS_DSC(diagnosticSessionType=3))
    ask(UDS() / UDS_RC(routineControlType=1, routineIdentifier=0x0203))
    print("10 02: " + bytes(ask(UDS() / UDS_DSC(diagnosticSessionType=2)))[:2].hex())
    print("34 before 29: " + bytes(ask(download)).hex())
    refused = ask(UDS() / UDS_AUTH(subFunction=1, communicationConfiguration=0,
                                    certificateClient=foreign, challengeClient=b""))
    print("29 01 foreign: " + bytes(refused).hex())
    answer = ask(UDS() / UDS_AUTH(subFunction=1, communicationConfiguration=0,
                                   certificateClient=chain, challengeClient=b""))
    if UDS_AUTHPR not in answer:
        print("29 01: " + bytes(answer).hex())
        sys.exit(1)
    pr = answer[UDS_AUTHPR]
    print(f"29 01 return: 0x{pr.returnValue:02x}")
    print(f"challenge bytes: {len(pr.challengeServer)}")
    proof = key.sign(LABEL + bytes(pr.challengeServer), ec.ECDSA(hashes.SHA256()))
    done = ask(UDS() / UDS_AUTH(subFunction=3, proofOfOwnershipClient=proof,
                                 ephemeralPublicKeyClient=b""))
    print(f"29 03 return: 0x{done[UDS_AUTHPR].returnValue:02x}")
    print("34 after 29: " + bytes(ask(download)).hex())
    again = ask(UDS() / UDS_AUTH(subFunction=3, proofOfOwnershipClient=proof,
                                  ephemeralPublicKeyClient=b""))
    print("29 03 replayed: " + bytes(again).hex())
finally:
    sock.close()
