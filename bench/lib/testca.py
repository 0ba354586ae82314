"""A throwaway CA and a server certificate for 127.0.0.1, for the tools that run bench/sink.py over TLS
(bench/health-rss, scripts/hot-text). The agent trusts the CA through SSL_CERT_FILE; webpki refuses a
self-signed certificate as the server's own, hence the two levels. Needs openssl."""
import os
import subprocess


def tls_files(d, name):
    """Writes the CA (common name `name`) and the leaf into directory `d`; returns the paths of the
    CA certificate, the leaf certificate and the leaf key."""
    ca_key, ca, key, csr, crt, ext = (os.path.join(d, n) for n in
                                      ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem", "ext"))
    q = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=" + name,
                    "-keyout", ca_key, "-out", ca], **q)
    subprocess.run(["openssl", "req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr], **q)
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-days", "2", "-extfile", ext, "-out", crt], **q)
    return ca, crt, key
