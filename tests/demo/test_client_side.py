"""The demo's client-side parsing of the onboarding email and revealed texts."""

from collections import Counter

from include.demo import client_side
from include.demo.summary import format_summary
from include.onboarding.share import sftp_plaintext

EMAIL = """<html><body>
<h2>AWS SDK and CLI access</h2>
<p><a href="https://127.0.0.1:8443/s/abc123#key-sdk">https://127.0.0.1:8443/s/abc123#key-sdk</a></p>
<h2>SFTP access</h2>
<p><a href="https://127.0.0.1:8443/s/def456#key-sftp">https://127.0.0.1:8443/s/def456#key-sftp</a></p>
</body></html>"""

SDK_TEXT = """AWS SDK credentials for Demo Clinic (client data exchange)

AWS_ACCESS_KEY_ID=AKIAEXAMPLE
AWS_SECRET_ACCESS_KEY=abc=def/ghi
AWS_DEFAULT_REGION=us-east-1
AWS_ENDPOINT_URL=http://127.0.0.1:5000

Bucket: cdx-demo-clinic (upload under incoming/)
"""


def test_links_by_method_finds_both():
    links = client_side.links_by_method(EMAIL)

    assert links == {
        "sdk": "https://127.0.0.1:8443/s/abc123#key-sdk",
        "sftp": "https://127.0.0.1:8443/s/def456#key-sftp",
    }


def test_links_by_method_single_section():
    sftp_only = EMAIL[EMAIL.index("<h2>SFTP") :]

    assert list(client_side.links_by_method(sftp_only)) == ["sftp"]


def test_parse_sdk_keeps_equals_in_secret():
    credentials = client_side.parse_sdk_credentials(SDK_TEXT)

    assert credentials.access_key_id == "AKIAEXAMPLE"
    assert credentials.secret_access_key == "abc=def/ghi"
    assert credentials.endpoint_url == "http://127.0.0.1:5000"
    assert "abc=def" not in repr(credentials)


def test_parse_sftp_reads_onboarding_text():
    text = sftp_plaintext("Demo Clinic", "demo-clinic", {"Password": "p: w"}, "127.0.0.1", 2222)

    login = client_side.parse_sftp_login(text)

    assert login.host == "127.0.0.1"
    assert login.port == 2222
    assert login.username == "demo-clinic"
    assert login.password == "p: w"
    assert "p: w" not in repr(login)


def test_format_summary_lists_counts():
    text = format_summary(
        "demo-clinic",
        Counter({"pass": 40, "not enforced locally": 4}),
        {"sdk": "viewed", "sftp": "viewed"},
        {"loaded": 6, "ignored": 1},
        {"fhir_Patient": 10},
    )

    assert "40 pass" in text
    assert "4 not enforced locally" in text
    assert "sdk viewed, sftp viewed" in text
    assert "6 loaded" in text
    assert "0 quarantined" in text
    assert "fhir_Patient" in text
