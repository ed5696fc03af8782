"""The EduBrite client always connects over https: run the dialect over TLS, end to end."""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from tests.e2e.server import cli, cli_env, running_server
from tests.edubrite_client import AdminUser, EduBriteConnection, coupon_fields, messages, parse

pytestmark = pytest.mark.slow
ADMIN = AdminUser("webmaster", "web@example.org", "Wéb Master")


@pytest.fixture
def certificate(tmp_path: Path) -> dict[str, str]:
    """A self-signed CA and a server certificate for 127.0.0.1, made here."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {
        "ca": tmp_path / "ca.pem",
        "cert": tmp_path / "server.pem",
        "key": tmp_path / "server.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server_cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server_cert.private_key_pem.write_to_path(str(paths["key"]))
    return {name: str(path) for name, path in paths.items()}


@pytest.mark.parametrize("via", ["flags", "environment"])
def test_java_client_flow_over_tls(
    database_url: str, certificate: dict[str, str], via: str
) -> None:
    tenant = f"tls-{secrets.token_hex(4)}"
    tls_env = (
        {"COUPONRY_SSL_CERTFILE": certificate["cert"], "COUPONRY_SSL_KEYFILE": certificate["key"]}
        if via == "environment"
        else {}
    )
    env = cli_env(database_url, **tls_env)
    cli("tenant", "create", tenant, "--name", "TLS", "--admin", "webmaster", env=env)
    key_id, secret = (
        cli("key", "create", tenant, "--role", "admin", env=env).stdout.strip().split(".")
    )
    flags = (
        ("--ssl-certfile", certificate["cert"], "--ssl-keyfile", certificate["key"])
        if via == "flags"
        else ()
    )
    with running_server(env, workers=2, extra_args=flags, tls_ca=certificate["ca"]) as server:
        assert server.base.startswith("https://")
        # plain http to the TLS port is not answered as an API
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.base.replace("https://", "http://") + "/healthz", timeout=3)
        context = ssl.create_default_context(cafile=certificate["ca"])
        with httpx.Client(verify=context, timeout=30) as http:
            connection = EduBriteConnection(http, server.base, key_id, secret)
            assert connection.connect()
            created = connection.invoke_api(
                "couponService.do",
                ADMIN,
                {
                    "dispatch": "createCoupon",
                    "xml": "true",
                    "couponName": "Über <secure> & fast",
                    "type": "PERCENT",
                    "valuePercent": "15",
                    "valueCount": "10",
                },
            )
            root = parse(created)
            assert messages(root) == [("0222", "Coupon Created Successfully")]
            coupon = coupon_fields(root.find("coupon"))  # type: ignore[arg-type]
            assert coupon["couponName"] == "Über <secure> & fast"
            updated = connection.invoke_api(
                "couponService.do",
                ADMIN,
                {"dispatch": "updateCoupon", "xml": "true", "id": coupon["id"], "valueCount": "20"},
            )
            assert messages(parse(updated))[0][0] == "0223"
            fetched = connection.invoke_api(
                "couponService.do", ADMIN, {"dispatch": "getCoupon", "id": coupon["id"]}
            )
            assert coupon_fields(parse(fetched).find("coupon"))["valueCount"] == "20"  # type: ignore[arg-type]
            # REST on the same TLS server sees the same coupon and who changed it
            rest = http.get(
                f"{server.base}/coupons/{tenant}/{coupon['id']}",
                headers={"Authorization": f"{key_id}.{secret}"},
            ).json()
            assert rest["usage_limit"] == 20 and rest["sys_last_modified_by_id"] == "webmaster"
            deleted = connection.invoke_api(
                "couponService.do", ADMIN, {"dispatch": "deleteCoupon", "id": coupon["id"]}
            )
            assert messages(parse(deleted))[0][0] == "0224"
            missing = connection.invoke_api(
                "couponService.do", ADMIN, {"dispatch": "getCoupon", "id": coupon["id"]}
            )
            assert connection.last_status == 404 and parse(missing).get("code") == "1003"
