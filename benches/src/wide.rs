//! The 100-row × 10-column query of `single_conn` and `decode`, and its full typed decoding.

/// Ten columns of the common types, 100 rows.
pub const WIDE: &str = "SELECT g::int8 AS a, g::int4 AS b, (g * 2)::int2 AS c, g::float8 / 3 AS d, \
     g % 2 = 0 AS e, 'row ' || g AS f, md5(g::text) AS h, (g * 7)::int8 AS i, \
     (g::float4 / 7)::float4 AS j, repeat('x', g % 20) AS k \
     FROM generate_series(1, $1::int4) AS g";

/// The decoding both drivers are measured on: every column of every row, typed, folded into a
/// checksum. One body for both `Row` types, so the work compared is the same.
macro_rules! sum_wide {
    ($rows:expr) => {{
        let mut n = 0usize;
        for r in $rows {
            let a: i64 = r.get(0);
            let b: i32 = r.get(1);
            let c: i16 = r.get(2);
            let d: f64 = r.get(3);
            let e: bool = r.get(4);
            let f: &str = r.get(5);
            let h: &str = r.get(6);
            let i: i64 = r.get(7);
            let j: f32 = r.get(8);
            let k: &str = r.get(9);
            n += (a + i64::from(b) + i64::from(c) + i) as usize
                + d as usize
                + usize::from(e)
                + f.len()
                + h.len()
                + j as usize
                + k.len();
        }
        n
    }};
}

/// Decodes every column of every row of [`WIDE`] (pgwire-lite), returning a checksum.
pub fn sum_wide_ours(rows: &[pgwire_lite::Row]) -> usize {
    sum_wide!(rows)
}

/// The same for tokio-postgres rows.
pub fn sum_wide_tp(rows: &[tokio_postgres::Row]) -> usize {
    sum_wide!(rows)
}
