"""A test client that speaks the EduBrite dialect exactly as EduBrite's Java client does.

It follows `EduBriteHttpConnection` (edubrite/javaapi): GET home.do with no parameters, then
again with `username` and `password` as query parameters, reading the cookies SESSION_ID and
SESSION_INFO from its cookie state; the connection fails if either is missing or if the server
sent an encryption header. Each call is then a form-encoded POST to /oltpublish/site/<uri>
carrying only those two cookies and `REAL_UNAME: username|email|full name`. Status 200 is
success; any other status counts as an API answer only if the body is XML rooted at
`response`, otherwise it is a transport failure (the Java client returns null).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import httpx
from defusedxml import ElementTree


class TransportFailure(Exception):
    """What the Java client reports as UNKNOWN_ERROR / BAD_URL."""


@dataclass
class AdminUser:
    name: str
    email: str = "admin@example.org"
    full_name: str = "Site Admin"

    def real_uname(self) -> str:
        return f"{self.name}|{self.email}|{self.full_name}"


@dataclass
class EduBriteConnection:
    http: httpx.Client
    base: str  # scheme://host:port, as the Java client builds it
    username: str
    password: str
    session_id: str | None = None
    session_info: str | None = None
    last_status: int = 0
    history: list[int] = field(default_factory=list)

    def connect(self) -> bool:
        url = f"{self.base}/oltpublish/site/home.do"
        self.http.cookies.clear()
        first = self.http.get(url)
        self.history.append(first.status_code)
        second = self.http.get(url, params={"username": self.username, "password": self.password})
        self.last_status = second.status_code
        if second.status_code != 200:
            return False
        if "SER_PUB_KEY" in second.headers or "SER_SEC_KEY" in second.headers:
            return False
        self.session_id = self.http.cookies.get("SESSION_ID")
        self.session_info = self.http.cookies.get("SESSION_INFO")
        return bool(self.session_id) and bool(self.session_info)

    def invoke_api(self, uri: str, user: AdminUser | None, parameters: dict[str, str]) -> str:
        """The raw reply body, as invokeApi returns it."""
        if not self.session_id or not self.session_info:
            raise RuntimeError("not connected")
        headers: dict[str, str | bytes] = {
            "Cookie": f"SESSION_ID={self.session_id}; SESSION_INFO={self.session_info}"
        }
        if user is not None:
            # commons-httpclient writes header values as US-ASCII: others become '?'
            headers["REAL_UNAME"] = user.real_uname().encode("ascii", "replace")
        self.http.cookies.clear()  # a fresh state holding just the two cookies, as the client does
        reply = self.http.post(
            f"{self.base}/oltpublish/site/{uri}",
            data=parameters,
            headers=headers,
        )
        self.last_status = reply.status_code
        if reply.status_code == 200:
            return reply.text
        try:
            root = ElementTree.fromstring(reply.content)
        except Exception as exc:
            raise TransportFailure(f"{reply.status_code}: not XML") from exc
        if root.tag.lower() != "response":
            raise TransportFailure(f"{reply.status_code}: root is {root.tag}")
        return reply.text


def parse(body: str) -> Element:
    root: Element = ElementTree.fromstring(body.encode("utf-8"))
    assert root.tag == "response"
    return root


def coupon_fields(element: Element) -> dict[str, Any]:
    """A <coupon> element as {child: text or None}, plus its id attribute."""
    fields: dict[str, Any] = {"id": element.get("id")}
    for child in element:
        fields[child.tag] = child.text
    return fields


def messages(root: Element) -> list[tuple[str, str]]:
    return [
        (msg.findtext("code") or "", msg.findtext("value") or "")
        for msg in root.iterfind("msgs/msg")
    ]
