"""`apache2 -t` accepts every directive with good values and rejects a bad value with a
message that names the directive and the value."""

import re
import subprocess
import unittest

from harness import APACHE2, HTTPD_ENV, REPO_ROOT, Httpd

GOOD_DIRECTIVES = (
    "TomographService Demo-Service",
    "TomographEnable On",
    "TomographZipkin http://127.0.0.1:9411/api/v2/spans",
    "TomographStatsd 127.0.0.1:8125",
    "TomographSpanFile logs/spans.json",
    "TomographQueueSize 64",
    "TomographHMACKey first-key",
    "TomographHMACKey second-key",
    "TomographTrustIncoming Off",
    "TomographB3Join On",
    "TomographSampleRate 0.25",
    "TomographDeepTraceRate 0.01",
    "TomographSampleLimit 100",
    "TomographResponseHeader X-Trace-Id",
    "TomographRedact token api_sig",
    "TomographExtract tracecontext b3 b3multi x-trace-info",
    "TomographPropagate b3multi x-trace-info",
    "TomographOTLP http://127.0.0.1:4318/v1/traces",
    "TomographBatch 100 250",
    "TomographTimeout 500ms 3",
    "TomographStatsdPacket 8192",
)

BAD_VALUES = (
    ("TomographQueueSize", "abc"),
    ("TomographQueueSize", "0"),
    ("TomographQueueSize", "-5"),
    ("TomographQueueSize", "12x"),
    ("TomographQueueSize", "15"),
    ("TomographQueueSize", "1048577"),
    ("TomographEnable", "maybe"),
    ("TomographStatsd", "nohostport"),
    ("TomographStatsd", "host:99999"),
    ("TomographStatsd", "host:port"),
    ("TomographZipkin", "not-a-url"),
    ("TomographZipkin", "ftp://127.0.0.1/api/v2/spans"),
    ("TomographTrustIncoming", "sometimes"),
    ("TomographB3Join", "yes-please"),
    ("TomographSampleRate", "1.5"),
    ("TomographSampleRate", "-0.1"),
    ("TomographSampleRate", "half"),
    ("TomographSampleRate", "0.5x"),
    ("TomographDeepTraceRate", "1%"),
    ("TomographDeepTraceRate", "2"),
    ("TomographSampleLimit", "-1"),
    ("TomographSampleLimit", "many"),
    ("TomographResponseHeader", "X:Trace"),
    ("TomographRedact", "token=x"),
    ("TomographExtract", "jaeger"),
    ("TomographPropagate", "zipkin"),
    ("TomographOTLP", "udp://127.0.0.1:4318"),
    ("TomographStatsdPacket", "63"),
    ("TomographStatsdPacket", "65508"),
    ("TomographTimeout", "0"),
    ("TomographTimeout", "301"),
)

# Directives of two arguments: (directive, arguments, the one the message must name).
BAD_ARGUMENTS = (
    ("TomographBatch", "0 100", "0"),
    ("TomographBatch", "512 forever", "forever"),
    ("TomographBatch", "512 60001", "60001"),
    ("TomographTimeout", "1 never", "never"),
)


SAMPLE_CONF = REPO_ROOT / "conf" / "tomograph.conf"
README = REPO_ROOT / "README.md"
# A line of the sample that a user uncomments: a directive of ours, or the section around one.
COMMENTED_OUT = re.compile(r"^(\s*)#(?=(Tomograph\w+|<Location|</Location)\b)", re.MULTILINE)


def config_test(directives):
    httpd = Httpd(directives)
    try:
        return httpd.config_test()
    finally:
        httpd.stop()


class ConfigTest(unittest.TestCase):
    def test_accepts_every_directive(self):
        status, output = config_test(GOOD_DIRECTIVES)
        self.assertEqual(status, 0, output)
        self.assertIn("Syntax OK", output)

    def test_rejects_bad_values_naming_directive_and_value(self):
        cases = [(d, value, value) for d, value in BAD_VALUES] + list(BAD_ARGUMENTS)
        for directive, arguments, value in cases:
            with self.subTest(directive=directive, arguments=arguments):
                status, output = config_test([f"{directive} {arguments}"])
                self.assertNotEqual(status, 0, output)
                self.assertIn(directive, output)
                # The value as a word of its own, not a digit of a line number.
                self.assertRegex(output, rf"(?<![\w.:/-]){re.escape(value)}(?![\w.:/-])")
                self.assertNotIn("Syntax OK", output)

    def module_directives(self, httpd):
        """The module's directives, as `apache2 -L` lists them for httpd's configuration."""
        listed = subprocess.run([APACHE2, "-L"] + httpd.arguments, env=HTTPD_ENV,
                                capture_output=True, text=True, timeout=30).stdout
        directives = set(re.findall(r"^(Tomograph\w+) ", listed, re.MULTILINE))
        self.assertGreaterEqual(len(directives), 19, listed)
        return directives

    def test_readme_documents_every_directive(self):
        """The README's table "Directives" has a row for each directive, and no other."""
        httpd = Httpd()
        try:
            directives = self.module_directives(httpd)
        finally:
            httpd.stop()
        table = README.read_text().split("## Directives\n", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"^\| `(Tomograph\w+)", table, re.MULTILINE))
        self.assertEqual(documented, directives)

    def test_sample_configuration_names_every_directive_and_is_valid_uncommented(self):
        """conf/tomograph.conf, which Debian users copy, shows every directive the module
        has (as `apache2 -L` lists them), and with all of them uncommented, each at the
        default or example it shows, the configuration passes `apache2 -t`."""
        sample = SAMPLE_CONF.read_text()
        httpd = Httpd()
        try:
            directives = self.module_directives(httpd)
            shown = set(re.findall(r"^\s*#?(Tomograph\w+) ", sample, re.MULTILINE))
            self.assertEqual(directives - shown, set(), "directives the sample does not show")
            self.assertEqual(shown - directives, set(), "the sample shows unknown directives")
            uncommented = httpd.root / "conf.d" / "tomograph-sample.conf"
            uncommented.write_text(COMMENTED_OUT.sub(r"\1", sample))
            self.assertNotIn("#Tomograph", uncommented.read_text())
            with open(httpd.conf, "a") as conf:
                conf.write(f"Include {uncommented}\n")
            status, output = httpd.config_test()
            self.assertEqual(status, 0, output)
        finally:
            httpd.stop()

    def test_rejects_server_only_directives_in_a_directory(self):
        for directive in ("TomographZipkin http://127.0.0.1:9411/api/v2/spans",
                          "TomographQueueSize 64", "TomographSampleLimit 5",
                          "TomographRedact token", "TomographExtract b3"):
            with self.subTest(directive=directive):
                status, output = config_test(
                    ["<Location /elsewhere>", "    " + directive, "</Location>"])
                self.assertNotEqual(status, 0, output)
                self.assertIn(directive.split()[0], output)


if __name__ == "__main__":
    unittest.main()
