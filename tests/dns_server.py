"""A real DNS server on loopback (dnslib, UDP, a free port) that answers TXT records the
test sets: what ``CUSTOM_DOMAIN_NAMESERVERS`` points at in the custom domain tests."""

import threading

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Records(BaseResolver):
    def __init__(self):
        self.txt: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.questions: list[str] = []

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            self.questions.append(name)
            values = list(self.txt.get(name, []))
        if not values:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=60))
        return reply


class LoopbackDns:
    """``set_txt(name, value)`` / ``remove(name)``; ``address``: ``(ip, port)``."""

    def __init__(self):
        self.records = _Records()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.server = DNSServer(self.records, port=0, address="127.0.0.1", logger=quiet)
        self.server.start_thread()
        self.address = self.server.server.server_address[:2]

    def set_txt(self, name: str, value: str) -> None:
        with self.records.lock:
            self.records.txt[name.lower()] = [value]

    def remove(self, name: str) -> None:
        with self.records.lock:
            self.records.txt.pop(name.lower(), None)

    def asked(self, name: str) -> int:
        with self.records.lock:
            return self.records.questions.count(name.lower())

    def stop(self) -> None:
        self.server.stop()
