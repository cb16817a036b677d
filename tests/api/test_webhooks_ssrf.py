"""Callback URLs are checked against server-side request forgery before any request."""

from __future__ import annotations

import pytest

from gridmend.api.ssrf import (
    AllowList,
    UnresolvableCallbackUrl,
    UnsafeCallbackUrl,
    check_callback_url,
    precheck_callback_url,
)


def answers(*addresses: str):
    """A resolver that answers from a table (no real DNS query is ever made in tests)."""
    return lambda host, port: list(addresses)


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"no lookup expected for {host}")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.8.9.10:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::]/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://[::ffff:127.0.0.1]/hook", "IPv4-mapped loopback"),
        ("http://[::ffff:10.0.0.1]/hook", "IPv4-mapped private"),
        ("http://[::ffff:169.254.169.254]/hook", "IPv4-mapped link-local"),
        ("http://100.64.0.1/hook", "not globally routable"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata host"),
        ("http://metadata/hook", "cloud metadata host"),
    ],
)
def test_internal_targets_are_refused_and_the_reason_is_named(url: str, reason: str) -> None:
    with pytest.raises(UnsafeCallbackUrl) as refused:
        check_callback_url(url, resolver=no_dns)
    assert reason in refused.value.reason
    assert refused.value.status_code == 400


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.org/x", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://hooks.example.org/", "scheme 'gopher'"),
        ("http:///nohost", "no host"),
        ("https://user:pw@hooks.example.org/", "credentials"),
        ("http://hooks.example.org:99999/", "malformed"),
    ],
)
def test_only_plain_http_and_https_urls_are_accepted(url: str, reason: str) -> None:
    with pytest.raises(UnsafeCallbackUrl) as refused:
        check_callback_url(url, resolver=answers("93.184.216.34"))
    assert reason in refused.value.reason


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    target = check_callback_url("https://hooks.example.org/in", resolver=answers("93.184.216.34"))
    assert target.address == "93.184.216.34" and target.port == 443
    assert target.request_url() == "https://93.184.216.34/in"
    assert target.host_header() == "hooks.example.org"
    with pytest.raises(UnsafeCallbackUrl, match="private"):
        check_callback_url(
            "https://hooks.example.org/in", resolver=answers("93.184.216.34", "10.0.0.7")
        )
    with pytest.raises(UnsafeCallbackUrl, match="loopback"):
        check_callback_url("http://localtest.me/in", resolver=answers("127.0.0.1"))


def test_a_name_without_addresses_is_reported_as_unresolvable() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnresolvableCallbackUrl, match="cannot resolve"):
        check_callback_url("https://nowhere.invalid/hook", resolver=fails)


def test_the_admin_allow_list_lets_chosen_networks_and_hosts_through() -> None:
    allow = AllowList.parse(["127.0.0.1/32", " 10.20.0.0/16 ", "hooks.internal", ""])
    pinned = check_callback_url("http://127.0.0.1:8765/hook", allow, resolver=no_dns)
    assert pinned.request_url() == "http://127.0.0.1:8765/hook"
    check_callback_url("http://10.20.3.4/hook", allow, resolver=no_dns)
    check_callback_url("http://hooks.internal/x", allow, resolver=answers("10.9.9.9"))
    with pytest.raises(UnsafeCallbackUrl, match="private"):
        check_callback_url("http://10.21.0.1/hook", allow, resolver=no_dns)
    with pytest.raises(UnsafeCallbackUrl, match="loopback"):
        check_callback_url("http://[::1]/hook", allow, resolver=no_dns)


def test_the_allow_list_is_read_from_the_environment() -> None:
    allow = AllowList.from_env({"GRIDMEND_WEBHOOK_ALLOW": "127.0.0.0/8,::1,Hooks.Internal."})
    assert allow.allows_host("hooks.internal")
    check_callback_url("http://[::1]:9000/x", allow, resolver=no_dns)
    assert AllowList.from_env({}) == AllowList()


def test_a_pinned_ipv6_target_keeps_brackets_and_the_original_host() -> None:
    target = check_callback_url(
        "https://hooks.example.org:8443/in?x=1", resolver=answers("2606:2800:220:1::1")
    )
    assert target.request_url() == "https://[2606:2800:220:1::1]:8443/in?x=1"
    assert target.host_header() == "hooks.example.org:8443"


def test_the_precheck_for_batch_intake_judges_without_any_lookup() -> None:
    precheck_callback_url("https://hooks.example.org/in")  # names wait for send time
    with pytest.raises(UnsafeCallbackUrl, match="private"):
        precheck_callback_url("http://10.0.0.1/in")
    with pytest.raises(UnsafeCallbackUrl, match="cloud metadata"):
        precheck_callback_url("http://metadata.google.internal/")
    precheck_callback_url("http://127.0.0.1:8080/in", AllowList.parse(["127.0.0.1"]))
