#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/<target>/seed-*.

Reproducible: run `python3 fuzz/make_seeds.py` from anywhere; it rewrites the seed-* files and
leaves the inputs that fuzzing added (named by their SHA-1) alone. Input formats are the ones
documented in fuzz/src/lib.rs:
  backend_frames  raw backend bytes, as read from the socket
  config_parse    DSN, then optional "\\x01NAME=VALUE" fake environment entries
  scram           u16 big-endian length of server-first, server-first, server-final
  from_sql        one byte selecting the column type (FROM_SQL_OIDS), then the raw value
"""

import base64
import hashlib
import hmac
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- backend messages ------------------------------------------------------------------------

def msg(tag, body=b""):
    return tag.encode() + struct.pack(">i", len(body) + 4) + body


def cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def i16(n):
    return struct.pack(">h", n)


def i32(n):
    return struct.pack(">i", n)


def auth(kind, rest=b""):
    return msg("R", i32(kind) + rest)


def param_status(name, value):
    return msg("S", cstr(name) + cstr(value))


def field(name, oid, typlen, fmt=0, table=0, col=0, typmod=-1):
    return cstr(name) + i32(table) + i16(col) + i32(oid) + i16(typlen) + i32(typmod) + i16(fmt)


def row_description(fields):
    return msg("T", i16(len(fields)) + b"".join(fields))


def data_row(values):
    body = i16(len(values))
    for v in values:
        if v is None:
            body += i32(-1)
        else:
            v = v.encode() if isinstance(v, str) else v
            body += i32(len(v)) + v
    return msg("D", body)


def error_fields(pairs):
    return b"".join(code.encode() + cstr(v) for code, v in pairs) + b"\0"


def rfq(status="I"):
    return msg("Z", status.encode())


# --- SCRAM (RFC 5802 / 7677), mirrored by expected_server_signature in fuzz/src/lib.rs --------

PASSWORD = b"pw"
CLIENT_NONCE = "fixednonce"


def server_signature(password, client_nonce, server_first):
    parts = dict(p.split("=", 1) for p in server_first.split(",")[:3])
    salted = hashlib.pbkdf2_hmac("sha256", password, base64.b64decode(parts["s"]), int(parts["i"]))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    auth_message = f"n=,r={client_nonce},{server_first},c=biws,r={parts['r']}"
    return hmac.new(server_key, auth_message.encode(), hashlib.sha256).digest()


def server_final_for(server_first):
    sig = server_signature(PASSWORD, CLIENT_NONCE, server_first)
    return "v=" + base64.b64encode(sig).decode()


SERVER_FIRST = "r=fixednonce3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
SERVER_FINAL = server_final_for(SERVER_FIRST)


def scram_input(server_first, server_final):
    first = server_first.encode() if isinstance(server_first, str) else server_first
    final = server_final.encode() if isinstance(server_final, str) else server_final
    return struct.pack(">H", len(first)) + first + final


def backend_seeds():
    t = "backend_frames"
    startup = b"".join([
        auth(10, cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0"),
        auth(11, SERVER_FIRST.encode()),
        auth(12, SERVER_FINAL.encode()),
        auth(0),
        param_status("application_name", "psqlpool"),
        param_status("client_encoding", "UTF8"),
        param_status("DateStyle", "ISO, MDY"),
        param_status("integer_datetimes", "on"),
        param_status("IntervalStyle", "postgres"),
        param_status("is_superuser", "off"),
        param_status("server_encoding", "UTF8"),
        param_status("server_version", "15.8 (Debian 15.8-1.pgdg120+1)"),
        param_status("session_authorization", "u"),
        param_status("standard_conforming_strings", "on"),
        param_status("TimeZone", "Etc/UTC"),
        msg("K", i32(4242) + bytes.fromhex("1f2e3d4c")),
        rfq("I"),
    ])
    write(t, "startup-scram", startup)
    write(t, "startup-md5", auth(5, b"\x01\x02\x03\x04") + auth(0) + msg("K", i32(7) + b"\xaa" * 32) + rfq())
    write(t, "startup-cleartext", auth(3) + auth(0) + rfq())
    write(t, "startup-negotiate", msg("v", i32(0) + i32(2) + cstr("_pq_.one") + cstr("_pq_.two")) + auth(0) + rfq())

    query = b"".join([
        row_description([
            field("id", 23, 4, table=16384, col=1),
            field("name", 25, -1, table=16384, col=2),
            field("data", 17, -1, fmt=1),
        ]),
        data_row(["1", "alice", b"\x00\x01\xff"]),
        data_row(["2", None, b""]),
        data_row([None, "", None]),
        msg("C", cstr("SELECT 3")),
        rfq("I"),
    ])
    write(t, "simple-query", query)

    extended = b"".join([
        msg("1"),
        msg("t", i16(2) + i32(23) + i32(25)),
        row_description([field("n", 20, 8, fmt=1)]),
        msg("2"),
        data_row([struct.pack(">q", 42)]),
        msg("s"),
        msg("2"),
        msg("n"),
        msg("C", cstr("INSERT 0 1")),
        msg("3"),
        msg("I"),
        rfq("T"),
    ])
    write(t, "extended-query", extended)

    all_fields = error_fields([
        ("S", "ERROR"), ("V", "ERROR"), ("C", "23505"),
        ("M", 'duplicate key value violates unique constraint "t_pkey"'),
        ("D", "Key (id)=(1) already exists."), ("H", "pick another id"),
        ("P", "15"), ("p", "3"), ("q", "SELECT 1"), ("W", "PL/pgSQL function f() line 3"),
        ("s", "public"), ("t", "t"), ("c", "id"), ("d", "int4"), ("n", "t_pkey"),
        ("F", "nbtinsert.c"), ("L", "666"), ("R", "_bt_check_unique"), ("Z", "unknown field"),
    ])
    write(t, "error-all-fields", msg("E", all_fields) + rfq("E"))
    write(t, "fatal-latin1", msg("E", error_fields([("S", "FATAL"), ("C", "28P01"), ("M", "r\xe9sum\xe9".encode("latin-1"))])))

    misc = b"".join([
        msg("N", error_fields([("S", "NOTICE"), ("V", "NOTICE"), ("C", "00000"), ("M", "hello")])),
        msg("A", i32(99) + cstr("chan") + cstr("payload")),
        msg("G", b"\x00" + i16(2) + i16(0) + i16(0)),
        msg("d", b"1\tone\n"),
        msg("c"),
        msg("H", b"\x01" + i16(1) + i16(1)),
        msg("W", b"\x00" + i16(0)),
        msg("V", i32(2) + b"ok"),
        msg("V", i32(-1)),
        rfq("I"),
    ])
    write(t, "async-and-copy", misc)

    # Hostile inputs of tests/FAULTS.md M1-M4, M11: each must be a clean Error::Protocol.
    write(t, "hostile-huge-length", b"Z\x7f\xff\xff\xff")
    write(t, "hostile-short-length", b"Z\x00\x00\x00\x03I")
    write(t, "hostile-datarow-count", msg("D", i16(-1) + b"\x00" * 8) + msg("D", struct.pack(">H", 65535) + b"\x00" * 8))
    write(t, "hostile-datarow-len", msg("D", i16(1) + i32(-2)) + msg("D", i16(1) + i32(100) + b"abc"))
    write(t, "hostile-rowdesc-unterminated", msg("T", i16(1) + b"name"))
    write(t, "hostile-error-no-nul", msg("E", b"SERROR\0Mmissing"))
    write(t, "hostile-rfq-status", msg("Z", b"X"))
    write(t, "hostile-key-short", msg("K", i32(1) + b"abc"))
    write(t, "hostile-auth-unknown", auth(99) + auth(7) + auth(8, b"gss") + auth(9) + auth(2) + auth(6))
    write(t, "partial-frame", data_row(["1", "2"])[:-1])


def config_seeds():
    t = "config_parse"
    forms = [
        "postgresql://user@localhost",
        "postgresql://user:password@%2Fvar%2Flib%2Fpostgresql/mydb?connect_timeout=10",
        "postgresql://user@host1:1234,host2,host3:5678?target_session_attrs=read-write",
        "postgresql:///mydb?user=user&host=/var/lib/postgresql",
        "host=localhost port=5432 user=u password='a b\\'c' dbname=d",
    ]
    for i, dsn in enumerate(forms):
        write(t, f"form{i + 1}", dsn)
    secret = [
        "postgresql://user:SECRETXYZ@localhost/mydb",
        "postgres://user:SECRETXYZ@[::1]:5433/db?sslmode=disable&application_name=app",
        "postgresql://localhost/mydb?password=SECRETXYZ&keepalives_idle=30",
        "host=/tmp port=5432 user=u password=SECRETXYZ dbname=d",
        "host=a,b port=1,2 password='SECRETXYZ' options='-c search_path=x'",
    ]
    for i, dsn in enumerate(secret):
        write(t, f"secret{i + 1}", dsn)
    write(t, "env-password", "host=localhost\x01PGPASSWORD=SECRETXYZ\x01PGPORT=notaport")
    write(t, "env-full", "\x01PGHOST=h1,h2\x01PGPORT=5432\x01PGUSER=u\x01PGDATABASE=d\x01PGAPPNAME=a"
          "\x01PGCONNECT_TIMEOUT=5\x01PGSSLMODE=prefer\x01PGTARGETSESSIONATTRS=primary\x01PGREQUIREAUTH=scram-sha-256")
    write(t, "env-bad-sslmode", "user=u password=SECRETXYZ\x01PGSSLMODE=verify-full")
    write(t, "kv-everything",
          "host=h port=5432 dbname=d user=u password=p connect_timeout=3 "
          "application_name=a fallback_application_name=f options='-c x=1' sslmode=allow "
          "keepalives=1 keepalives_idle=10 keepalives_interval=5 keepalives_count=3 "
          "tcp_user_timeout=1000 target_session_attrs=any require_auth=!password")
    write(t, "kv-unsupported", "hostaddr=127.0.0.1 sslmode=require")
    write(t, "url-percent", "postgresql://us%40er:p%2Fw@h%3A/d%20b?application_name=%E2%9C%93&sslmode=disable")
    write(t, "empty", "")


def scram_seeds():
    t = "scram"
    write(t, "valid", scram_input(SERVER_FIRST, SERVER_FINAL))
    ext_first = SERVER_FIRST + ",x=ext"
    write(t, "valid-with-extension", scram_input(ext_first, server_final_for(ext_first) + ",y=ext"))
    cheap = "r=fixednonceS,s=c2FsdA==,i=1"
    write(t, "valid-one-iteration", scram_input(cheap, server_final_for(cheap)))
    # RFC 7677 section 3, verbatim: the nonce is not ours, so update must refuse it.
    rfc_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    rfc_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    write(t, "rfc7677", scram_input(rfc_first, rfc_final))
    write(t, "wrong-signature", scram_input(SERVER_FIRST, rfc_final))
    write(t, "server-error", scram_input(SERVER_FIRST, "e=invalid-proof"))
    write(t, "mandatory-ext", scram_input("m=x," + SERVER_FIRST, SERVER_FINAL))
    write(t, "iterations-over-cap", scram_input("r=fixednonceS,s=c2FsdA==,i=99999999999", "v="))
    write(t, "iterations-zero", scram_input("r=fixednonceS,s=c2FsdA==,i=0", "v="))
    write(t, "salt-not-base64", scram_input("r=fixednonceS,s=***,i=1", "v="))
    write(t, "nonce-not-extended", scram_input("r=fixednonce,s=c2FsdA==,i=1", "v="))


# Mirrors FROM_SQL_TYPES in fuzz/src/lib.rs, in the same order.
FROM_SQL_OIDS = [16, 17, 18, 19, 20, 21, 23, 25, 26, 114, 700, 701, 705, 1000, 1001, 1002, 1003,
                 1005, 1007, 1009, 1028, 1014, 1015, 1016, 1021, 1022, 1042, 1043, 1082, 1083,
                 1114, 1115, 1182, 1183, 1184, 1185, 1186, 1187, 1231, 1700, 2278, 2950, 2951,
                 3802, 3807, 199]
UNKNOWN_SELECTOR = len(FROM_SQL_OIDS)


def typed(oid, raw):
    sel = FROM_SQL_OIDS.index(oid) if oid is not None else UNKNOWN_SELECTOR
    return bytes([sel]) + (raw.encode() if isinstance(raw, str) else raw)


def pg_array(elem_oid, dims, elems):
    """Binary array: ndim, has_null, element OID, (len, lower bound) per dim, elements."""
    body = i32(len(dims)) + i32(1 if any(e is None for e in elems) else 0) + i32(elem_oid)
    for n, lb in dims:
        body += i32(n) + i32(lb)
    for e in elems:
        body += i32(-1) if e is None else i32(len(e)) + e
    return body


def numeric_binary(weight, sign, dscale, digits):
    return i16(len(digits)) + i16(weight) + struct.pack(">H", sign) + i16(dscale) + b"".join(i16(d) for d in digits)


def from_sql_seeds():
    t = "from_sql"
    seeds = {
        "bool-binary": typed(16, b"\x01"),
        "bool-text": typed(16, "t"),
        "int2-binary": typed(21, i16(-7)),
        "int4-binary": typed(23, i32(42)),
        "int4-text": typed(23, "-2147483648"),
        "int8-binary": typed(20, struct.pack(">q", 1 << 40)),
        "int8-text": typed(20, "9223372036854775807"),
        "oid-text": typed(26, "4294967295"),
        "char-binary": typed(18, b"\xff"),
        "float4-binary": typed(700, struct.pack(">f", 1.5)),
        "float8-binary": typed(701, struct.pack(">d", -0.1)),
        "float8-text": typed(701, "-Infinity"),
        "text": typed(25, "h\u00e9llo"),
        "name": typed(19, "pg_catalog"),
        "varchar": typed(1043, "v"),
        "bpchar": typed(1042, "ab  "),
        "bytea-binary": typed(17, b"\x00\x01\xfe"),
        "bytea-text-hex": typed(17, "\\x0001fe"),
        "bytea-text-escape": typed(17, "a\\000\\\\b"),
        "numeric-binary": typed(1700, numeric_binary(1, 0, 3, [1, 2345, 6780])),
        "numeric-binary-neg-small": typed(1700, numeric_binary(-2, 0x4000, 8, [12])),
        "numeric-binary-nan": typed(1700, numeric_binary(0, 0xC000, 0, [])),
        "numeric-text": typed(1700, "-12345.678900"),
        "numeric-text-exp": typed(1700, "1.5e-3"),
        "numeric-text-inf": typed(1700, "-Infinity"),
        "date-binary": typed(1082, i32(8825)),
        "date-text": typed(1082, "2024-02-29"),
        "date-text-bc": typed(1082, "0044-03-15 BC"),
        "date-text-inf": typed(1082, "infinity"),
        "time-binary": typed(1083, struct.pack(">q", 45296789012)),
        "time-text": typed(1083, "12:34:56.789012"),
        "timestamp-binary": typed(1114, struct.pack(">q", 762_145_445_678_000)),
        "timestamp-text": typed(1114, "2024-02-25 03:04:05.678"),
        "timestamptz-text": typed(1184, "2024-02-25 03:04:05.678+05:30"),
        "timestamptz-binary-inf": typed(1184, struct.pack(">q", (1 << 63) - 1)),
        "interval-binary": typed(1186, struct.pack(">q", 14706789000) + i32(3) + i32(14)),
        "interval-text": typed(1186, "1 year 2 mons -3 days 04:05:06.789"),
        "uuid-binary": typed(2950, bytes(range(16))),
        "uuid-text": typed(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        "json-text": typed(114, '{"a": [1, 2.5, null, "x"]}'),
        "jsonb-binary": typed(3802, b"\x01" + b'{"k": true}'),
        "int4-array-binary": typed(1007, pg_array(23, [(3, 1)], [i32(1), None, i32(3)])),
        "int8-array-2d-binary": typed(1016, pg_array(20, [(2, 1), (2, 0)], [struct.pack(">q", i) for i in range(4)])),
        "int4-array-text": typed(1007, "{1,NULL,3}"),
        "int8-array-2d-text": typed(1016, "[0:1][1:2]={{1,2},{3,4}}"),
        "text-array-text": typed(1009, '{"a b",NULL,"c\\"d",e}'),
        "text-array-binary": typed(1009, pg_array(25, [(2, 1)], [b"x", None])),
        "numeric-array-text": typed(1231, "{1.5,NaN,-Infinity}"),
        "timestamptz-array-text": typed(1185, '{"2024-01-01 00:00:00+00",infinity}'),
        "bytea-array-text": typed(1001, '{"\\\\x01",NULL}'),
        "empty-array": typed(1007, pg_array(23, [], [])),
        "unknown-type": typed(None, "(1,2)"),
        "void": typed(2278, ""),
    }
    for name, data in seeds.items():
        write(t, name, data)


if __name__ == "__main__":
    backend_seeds()
    config_seeds()
    scram_seeds()
    from_sql_seeds()
