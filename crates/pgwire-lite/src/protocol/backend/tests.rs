//! Byte-level tests of the backend decoder.

use super::*;
use BackendMessage as M;

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&i32::try_from(body.len() + 4).unwrap().to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn dec(tag: u8, body: &[u8]) -> Result<M<'static>, Error> {
    let f: &'static [u8] = Box::leak(frame(tag, body).into_boxed_slice());
    assert_eq!(
        check_frame(f, DEFAULT_MAX_MESSAGE_LEN).unwrap(),
        Some(f.len())
    );
    decode(f)
}

fn err(tag: u8, body: &[u8]) -> String {
    match dec(tag, body) {
        Err(Error::Protocol(m)) => m,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn check_frame_needs_whole_frame() {
    let f = frame(b'Z', b"I");
    for cut in 0..f.len() {
        assert_eq!(check_frame(&f[..cut], 1 << 20).unwrap(), None, "cut {cut}");
    }
    assert_eq!(check_frame(&f, 1 << 20).unwrap(), Some(6));
}

#[test]
fn check_frame_rejects_bad_lengths() {
    let e = check_frame(b"Z\0\0\0\x03", 1 << 20).unwrap_err();
    assert!(e.to_string().contains("invalid length 3"), "{e}");
    let e = check_frame(b"Z\xff\xff\xff\xff", 1 << 20).unwrap_err();
    assert!(e.to_string().contains("invalid length -1"), "{e}");
    // A short-message type may not claim more than libpq allows, even when the cap is larger.
    let e = check_frame(b"Z\0\x01\0\0", 1 << 30).unwrap_err();
    assert!(e.to_string().contains("over the limit of 30000"), "{e}");
    // A DataRow may be long, up to the configured cap.
    assert_eq!(check_frame(b"D\0\x01\0\0", 1 << 30).unwrap(), None);
    let e = check_frame(b"D\x7f\xff\xff\xff", 1 << 30).unwrap_err();
    assert!(e.to_string().contains("over the limit"), "{e}");
}

#[test]
fn simple_messages() {
    assert_eq!(dec(b'1', b"").unwrap(), M::ParseComplete);
    assert_eq!(dec(b'2', b"").unwrap(), M::BindComplete);
    assert_eq!(dec(b'3', b"").unwrap(), M::CloseComplete);
    assert_eq!(dec(b'n', b"").unwrap(), M::NoData);
    assert_eq!(dec(b's', b"").unwrap(), M::PortalSuspended);
    assert_eq!(dec(b'I', b"").unwrap(), M::EmptyQueryResponse);
    assert_eq!(dec(b'c', b"").unwrap(), M::CopyDone);
    assert_eq!(dec(b'Z', b"T").unwrap(), M::ReadyForQuery { status: b'T' });
    assert!(err(b'1', b"x").contains("expected 0"));
    assert!(err(b'Z', b"").contains("expected 1"));
    assert!(err(b'Z', b"X").contains("unknown transaction status"));
}

#[test]
fn authentication_messages() {
    assert_eq!(dec(b'R', &[0, 0, 0, 0]).unwrap(), M::AuthenticationOk);
    assert_eq!(
        dec(b'R', &[0, 0, 0, 3]).unwrap(),
        M::AuthenticationCleartextPassword
    );
    assert_eq!(
        dec(b'R', &[0, 0, 0, 5, 9, 8, 7, 6]).unwrap(),
        M::AuthenticationMD5Password { salt: [9, 8, 7, 6] }
    );
    assert_eq!(
        dec(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0").unwrap(),
        M::AuthenticationSASL {
            mechanisms: vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
        }
    );
    assert_eq!(
        dec(b'R', b"\0\0\0\x0br=abc").unwrap(),
        M::AuthenticationSASLContinue { data: b"r=abc" }
    );
    assert_eq!(
        dec(b'R', b"\0\0\0\x0cv=xyz").unwrap(),
        M::AuthenticationSASLFinal { data: b"v=xyz" }
    );
    for (k, m) in [
        (2u8, M::AuthenticationKerberosV5),
        (6, M::AuthenticationSCMCredential),
        (7, M::AuthenticationGSS),
        (9, M::AuthenticationSSPI),
    ] {
        assert_eq!(dec(b'R', &[0, 0, 0, k]).unwrap(), m);
    }
    assert!(err(b'R', &[0, 0, 0, 5, 1]).contains("truncated"));
    assert!(err(b'R', &[0, 0, 0, 0, 1]).contains("unexpected bytes"));
    assert!(err(b'R', &[0, 0, 0, 42]).contains("unknown authentication request type 42"));
    assert!(err(b'R', b"\0\0\0\x0aSCRAM").contains("NUL"));
}

#[test]
fn backend_key_data_any_length() {
    let mut body = vec![0, 0, 0, 7];
    body.extend_from_slice(&[1; 32]);
    match dec(b'K', &body).unwrap() {
        M::BackendKeyData {
            process_id,
            secret_key,
        } => {
            assert_eq!(process_id, 7);
            assert_eq!(secret_key.len(), 32);
        }
        m => panic!("{m:?}"),
    }
    assert!(err(b'K', &[0, 0, 0, 7, 1, 2, 3]).contains("cancel key"));
    let mut long = vec![0, 0, 0, 7];
    long.extend_from_slice(&[1; 257]);
    assert!(err(b'K', &long).contains("cancel key"));
}

#[test]
fn command_complete_and_rows_affected() {
    assert_eq!(
        dec(b'C', b"INSERT 0 5\0").unwrap(),
        M::CommandComplete { tag: "INSERT 0 5" }
    );
    assert_eq!(rows_affected("INSERT 0 5"), 5);
    assert_eq!(rows_affected("UPDATE 12"), 12);
    assert_eq!(rows_affected("SELECT 3"), 3);
    assert_eq!(rows_affected("CREATE TABLE"), 0);
    assert_eq!(rows_affected("BEGIN"), 0);
    assert!(err(b'C', b"INSERT").contains("NUL"));
}

#[test]
fn data_row() {
    let body = b"\0\x03\0\0\0\x02ab\xff\xff\xff\xff\0\0\0\0";
    let M::DataRow(row) = dec(b'D', body).unwrap() else {
        panic!()
    };
    assert_eq!(row.len(), 3);
    let ranges: Vec<_> = row.ranges().collect();
    assert_eq!(ranges, vec![Some(6..8), None, Some(16..16)]);
    assert_eq!(&body[6..8], b"ab");
}

#[test]
fn parameter_description_counts_up_to_65535() {
    let mut body = vec![0xff, 0xff];
    body.extend(std::iter::repeat_n([0u8, 0, 0, 23], 65_535).flatten());
    let M::ParameterDescription(p) = dec(b't', &body).unwrap() else {
        panic!()
    };
    assert_eq!(p.len(), 65_535);
    // Its frame is over 30,000 bytes, and allowed to be.
    let f = frame(b't', &body);
    assert_eq!(
        check_frame(&f, DEFAULT_MAX_MESSAGE_LEN).unwrap(),
        Some(f.len())
    );
    let f = frame(b'S', &[b'x'; 40_000]);
    assert_eq!(
        check_frame(&f, DEFAULT_MAX_MESSAGE_LEN).unwrap(),
        Some(f.len())
    );
    // Other short messages are still capped.
    let f = frame(b'K', &[0; 40_000]);
    assert!(check_frame(&f, DEFAULT_MAX_MESSAGE_LEN).is_err());
}

#[test]
fn data_row_hostile() {
    // A count far larger than the bytes present: rejected before allocating.
    assert!(err(b'D', b"\x7f\xff").contains("claims 32767 items"));
    assert!(err(b'D', b"\xff\xff").contains("negative count"));
    // A value length pointing past the end.
    assert!(err(b'D', b"\0\x01\0\0\0\x09ab").contains("truncated"));
    // The last value checked too.
    assert!(err(b'D', b"\0\x02\0\0\0\0\0\0\0\x05").contains("truncated"));
    assert!(err(b'D', b"\0\x01\xff\xff\xff\xfe").contains("invalid value length -2"));
    assert!(err(b'D', b"\0\x01\0\0\0\0x").contains("unexpected bytes"));
}

fn field(name: &str, oid: u32, format: i16) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(&1234u32.to_be_bytes());
    v.extend_from_slice(&2i16.to_be_bytes());
    v.extend_from_slice(&oid.to_be_bytes());
    v.extend_from_slice(&4i16.to_be_bytes());
    v.extend_from_slice(&(-1i32).to_be_bytes());
    v.extend_from_slice(&format.to_be_bytes());
    v
}

#[test]
fn row_description() {
    let mut body = vec![0, 2];
    body.extend(field("id", 23, 1));
    body.extend(field("name", 25, 0));
    let M::RowDescription(rd) = dec(b'T', &body).unwrap() else {
        panic!()
    };
    let f: Vec<_> = rd.fields().collect();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].name, "id");
    assert_eq!(f[0].type_oid, 23);
    assert_eq!(f[0].table_oid, 1234);
    assert_eq!(f[1].name, "name");
    assert_eq!(f[1].format, 0);
    body.pop();
    assert!(err(b'T', &body).contains("truncated"));
    assert!(err(b'T', b"\0\x05ab\0").contains("claims 5 items"));
}

#[test]
fn parameter_description() {
    let M::ParameterDescription(p) = dec(b't', b"\0\x02\0\0\0\x17\0\0\0\x19").unwrap() else {
        panic!()
    };
    assert_eq!(p.oids().collect::<Vec<_>>(), vec![23, 25]);
    assert!(err(b't', b"\0\x02\0\0\0\x17").contains("claims 2 items"));
}

#[test]
fn error_response_all_fields() {
    let body = b"SERROR\0VERROR\0C42P01\0Mno table\0Ddetail\0Hhint\0P12\0p3\0qiq\0Wwhere\0sschem\0ttab\0ccol\0ddt\0ncon\0Ffile.c\0L99\0Rroutine\0Zunknown\0\0";
    let M::ErrorResponse(f) = dec(b'E', body).unwrap() else {
        panic!()
    };
    let e = f.to_db_error();
    assert_eq!(e.code(), "42P01");
    assert_eq!(e.severity(), "ERROR");
    assert_eq!(e.message, "no table");
    assert_eq!(e.detail.as_deref(), Some("detail"));
    assert_eq!(e.hint.as_deref(), Some("hint"));
    assert_eq!(e.position, Some(12));
    assert_eq!(e.internal_position, Some(3));
    assert_eq!(e.internal_query.as_deref(), Some("iq"));
    assert_eq!(e.where_.as_deref(), Some("where"));
    assert_eq!(e.schema.as_deref(), Some("schem"));
    assert_eq!(e.table.as_deref(), Some("tab"));
    assert_eq!(e.column.as_deref(), Some("col"));
    assert_eq!(e.datatype.as_deref(), Some("dt"));
    assert_eq!(e.constraint.as_deref(), Some("con"));
    assert_eq!(e.file.as_deref(), Some("file.c"));
    assert_eq!(e.line, Some(99));
    assert_eq!(e.routine.as_deref(), Some("routine"));
    assert!(err(b'E', b"SERROR\0").contains("truncated"));
    assert!(err(b'E', b"SERROR").contains("NUL"));
    // Non-UTF-8 field values are read lossily, not rejected.
    let M::NoticeResponse(n) = dec(b'N', b"Mb\xffd\0\0").unwrap() else {
        panic!()
    };
    assert_eq!(n.to_db_error().message, "b\u{fffd}d");
}

#[test]
fn misc_messages() {
    assert_eq!(
        dec(b'S', b"client_encoding\0UTF8\0").unwrap(),
        M::ParameterStatus {
            name: "client_encoding",
            value: "UTF8"
        }
    );
    assert_eq!(
        dec(b'A', b"\0\0\0\x01chan\0hi\0").unwrap(),
        M::NotificationResponse {
            process_id: 1,
            channel: "chan",
            payload: "hi"
        }
    );
    assert_eq!(
        dec(b'v', b"\0\0\0\0\0\0\0\x01_pq_.x\0").unwrap(),
        M::NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: vec!["_pq_.x"]
        }
    );
    assert!(err(b'v', b"\0\0\0\0\x7f\0\0\0").contains("bad count"));
    assert_eq!(dec(b'G', b"\0\0\x01\0\0").unwrap(), M::CopyInResponse);
    assert_eq!(dec(b'H', b"\x01\0\0").unwrap(), M::CopyOutResponse);
    assert_eq!(dec(b'd', b"xyz").unwrap(), M::CopyData { data: b"xyz" });
    assert_eq!(dec(b'V', b"\0\0\0\x02ab").unwrap(), M::FunctionCallResponse);
    assert!(err(b'V', b"\0\0\0\x09ab").contains("truncated"));
    assert!(err(b'q', b"").contains("unknown tag 0x71"));
    assert!(err(b'S', b"a\xff\0b\0").contains("not UTF-8"));
}

#[test]
fn garbage_never_panics() {
    // Every tag with every short body; a cheap, deterministic sweep (the fuzz target goes
    // further).
    let bodies: [&[u8]; 8] = [
        b"",
        b"\0",
        b"\xff",
        b"\0\0",
        b"\xff\xff\xff\xff",
        b"\0\x01\0\0\0\x01",
        b"\x7f\xff\x7f\xff\x7f\xff",
        b"\0\0\0\x0a\0",
    ];
    for tag in 0..=255u8 {
        for body in bodies {
            let _ = decode_body(tag, body);
        }
    }
}
