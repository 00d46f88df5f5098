//! User-defined types against a real PostgreSQL: enums, domains, composites, ranges, `inet` /
//! `cidr` / `macaddr`, both protocols (binary through `execute`, text through
//! `simple_query`); type errors naming types by name; the per-pool type cache; and the
//! derives (`ToSql`/`FromSql` for enums and composites, `FromRow`).
//!
//! Every test works in a schema of its own (the cluster is shared by the suite's parallel
//! tests), so the types print schema-qualified (`ut_enum.mood`).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Bound;

use pgwire_lite::types::{Date, Inet, MacAddr, Numeric, Range, Timestamp};
use pgwire_lite::{Connection, Error, Format, Kind, Value};

/// A fresh schema `name` on `c`, first on the search path.
async fn schema(c: &mut Connection, name: &str) {
    c.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}; SET search_path = {name}, public"
    ))
    .await
    .unwrap_or_else(|e| panic!("schema {name}: {e}"));
}

/// Column 0 of the single row of the simple-protocol query `sql` (text format).
async fn simple(c: &mut Connection, sql: &str) -> pgwire_lite::Row {
    let res = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let row = res
        .into_iter()
        .last()
        .and_then(|r| r.into_single_row())
        .expect("one row");
    assert_eq!(row.columns()[0].format(), Format::Text);
    row
}

#[tokio::test]
async fn enums_bind_from_str_and_read_as_string_in_both_formats() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_enum").await;
    c.batch_execute(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE person (name text, m mood, ms mood[])",
    )
    .await
    .unwrap();
    let n = c
        .execute(
            "INSERT INTO person VALUES ($1, $2, $3)",
            &[&"ann", &"happy", &vec!["ok".to_string(), "sad".to_string()]],
        )
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 1);
    // Binary (extended protocol).
    let row = c
        .query_one("SELECT m, ms, m AS v FROM person WHERE m = $1", &[&"happy"])
        .await
        .unwrap();
    let ty = row.columns()[0].type_();
    assert_eq!(ty.to_string(), "ut_enum.mood");
    assert_eq!(
        ty.enum_labels(),
        Some(&["sad".to_string(), "ok".to_string(), "happy".to_string()][..])
    );
    assert_eq!(row.get::<_, String>("m"), "happy");
    assert_eq!(row.get::<_, &str>("m"), "happy");
    assert_eq!(row.get::<_, Vec<String>>("ms"), ["ok", "sad"]);
    assert_eq!(row.get::<_, Value>("v"), Value::Enum("happy".into()));
    assert_eq!(row.columns()[1].type_().to_string(), "ut_enum.mood[]");
    // Text (simple protocol).
    let row = simple(&mut c, "SELECT m, ms FROM person").await;
    assert_eq!(row.get::<_, String>(0), "happy");
    assert_eq!(row.get::<_, Value>(0), Value::Enum("happy".into()));
    assert_eq!(row.get::<_, Vec<String>>(1), ["ok", "sad"]);
    // An unknown label is the server's error, not ours.
    let e = c.execute("SELECT $1::mood", &[&"angry"]).await.unwrap_err();
    assert_eq!(e.code(), Some("22P02"), "{e}");
}

#[tokio::test]
async fn type_errors_name_the_enum() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_enum_err").await;
    c.batch_execute("CREATE TYPE color AS ENUM ('red', 'green')")
        .await
        .unwrap();
    let e = c.execute("SELECT $1::color", &[&5i32]).await.unwrap_err();
    assert!(matches!(e, Error::Conversion(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("ut_enum_err.color"), "{msg}");
    assert!(!msg.contains("oid"), "{msg}");
    let row = c.query_one("SELECT 'red'::color AS c", &[]).await.unwrap();
    let msg = row.try_get::<_, i64>("c").unwrap_err().to_string();
    assert!(
        msg.contains("column \"c\" of type ut_enum_err.color"),
        "{msg}"
    );
}

#[tokio::test]
async fn domains_behave_as_their_base_type() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_domain").await;
    c.batch_execute(
        "CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
         CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
         CREATE DOMAIN small AS posint CHECK (VALUE < 100);
         CREATE TABLE acct (id posint, mail email, s small)",
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO acct VALUES ($1, $2, $3)",
        &[&7i32, &"a@b.c", &42i32],
    )
    .await
    .unwrap();
    let row = c
        .query_one("SELECT id, mail, s FROM acct", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>("id"), 7);
    assert_eq!(row.get::<_, i64>("id"), 7);
    assert_eq!(row.get::<_, String>("mail"), "a@b.c");
    assert_eq!(row.get::<_, i32>("s"), 42);
    assert_eq!(row.get::<_, Value>("s"), Value::Int4(42));
    // RowDescription reports a domain column as its base type; parameters keep the domain.
    assert_eq!(*row.columns()[2].type_(), pgwire_lite::Type::INT4);
    let stmt = c
        .prepare("INSERT INTO acct VALUES ($1, $2, $3)")
        .await
        .unwrap();
    let ty = &stmt.params()[2];
    assert_eq!(ty.to_string(), "ut_domain.small");
    assert!(matches!(ty.kind(), Kind::Domain(_)));
    assert_eq!(*ty.base(), pgwire_lite::Type::INT4);
    assert_eq!(stmt.params()[1].to_string(), "ut_domain.email");
    // Arrays of a domain: elements go and come as the base type.
    c.batch_execute("CREATE TABLE lists (xs posint[])")
        .await
        .unwrap();
    c.execute("INSERT INTO lists VALUES ($1)", &[&vec![1i32, 2]])
        .await
        .unwrap();
    let row = c.query_one("SELECT xs FROM lists", &[]).await.unwrap();
    assert_eq!(row.get::<_, Vec<i32>>(0), [1, 2]);
    // The domain's CHECK is the server's; a wrong Rust type names the domain.
    let e = c
        .execute("INSERT INTO acct (id) VALUES ($1)", &[&-1i32])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("23514"), "{e}");
    let e = c
        .execute("INSERT INTO acct (id) VALUES ($1)", &[&"x"])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ut_domain.posint"), "{e}");
    let row = simple(&mut c, "SELECT id, s FROM acct").await;
    assert_eq!(row.get::<_, i32>(0), 7);
    assert_eq!(row.get::<_, i32>(1), 42);
}

#[tokio::test]
async fn composites_and_arrays_of_them_read_into_value() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_comp").await;
    c.batch_execute(
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE TYPE item AS (name text, qty int4, m mood, tags text[]);",
    )
    .await
    .unwrap();
    let expect = Value::Composite(vec![
        ("name".into(), Value::Text("bolt, \"big\"".into())),
        ("qty".into(), Value::Int4(3)),
        ("m".into(), Value::Enum("happy".into())),
        (
            "tags".into(),
            Value::Array {
                element_type: pgwire_lite::Type::TEXT,
                array: pgwire_lite::types::Array::from_vec(vec![Some(Value::Text("a".into()))]),
            },
        ),
    ]);
    let sql = "SELECT ROW('bolt, \"big\"', 3, 'happy', ARRAY['a'])::item AS i, \
               ARRAY[ROW('x', NULL, 'sad', NULL)::item] AS arr, ROW(1, 'two') AS anon";
    let row = c.query_one(sql, &[]).await.unwrap();
    assert_eq!(row.columns()[0].type_().to_string(), "ut_comp.item");
    let fields = row.columns()[0].type_().fields().unwrap();
    assert_eq!(
        fields.iter().map(|f| f.name()).collect::<Vec<_>>(),
        ["name", "qty", "m", "tags"]
    );
    assert_eq!(row.get::<_, Value>("i"), expect);
    let Value::Array { array, .. } = row.get::<_, Value>("arr") else {
        panic!("array");
    };
    assert_eq!(
        array.elements,
        [Some(Value::Composite(vec![
            ("name".into(), Value::Text("x".into())),
            ("qty".into(), Value::Null),
            ("m".into(), Value::Enum("sad".into())),
            ("tags".into(), Value::Null),
        ]))]
    );
    assert_eq!(
        row.get::<_, Value>("anon"),
        Value::Composite(vec![
            ("f1".into(), Value::Int4(1)),
            ("f2".into(), Value::Text("two".into())),
        ])
    );
    // A composite Value goes back as a parameter, its fields matched by name.
    let back = c
        .query_one(
            "SELECT ($1::item).qty + 1 AS q, ($1::item).m::text AS m",
            &[&expect],
        )
        .await
        .unwrap();
    assert_eq!(back.get::<_, i32>("q"), 4);
    assert_eq!(back.get::<_, String>("m"), "happy");
    // Text format: fields by the type's names and types.
    let row = simple(&mut c, "SELECT ROW('plain', 3, 'happy', NULL)::item").await;
    assert_eq!(
        row.get::<_, Value>(0),
        Value::Composite(vec![
            ("name".into(), Value::Text("plain".into())),
            ("qty".into(), Value::Int4(3)),
            ("m".into(), Value::Enum("happy".into())),
            ("tags".into(), Value::Null),
        ])
    );
}

#[tokio::test]
async fn ranges_round_trip_in_both_formats() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_range").await;
    c.batch_execute("CREATE TYPE floatrange AS RANGE (subtype = float8)")
        .await
        .unwrap();
    let r: Range<i32> = Range::half_open(1, 10);
    let row = c
        .query_one(
            "SELECT $1::int4range AS a, '[1,5]'::int4range AS b, 'empty'::int8range AS e, \
             '(,7)'::int8range AS u",
            &[&r],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Range<i32>>("a"), r);
    // Discrete ranges come back canonical.
    assert_eq!(row.get::<_, Range<i32>>("b"), Range::half_open(1, 6));
    assert_eq!(row.get::<_, Range<i64>>("e"), Range::Empty);
    assert_eq!(
        row.get::<_, Range<i64>>("u"),
        Range::Bounds(Bound::Unbounded, Bound::Excluded(7))
    );
    // numrange, daterange, tsrange, and a user range over float8, each sent and read back.
    let num: Range<Numeric> = Range::Bounds(
        Bound::Excluded("1.5".parse().unwrap()),
        Bound::Included("2.25".parse().unwrap()),
    );
    let d: Range<Date> = Range::half_open(
        Date::from_ymd(2024, 1, 1).unwrap(),
        Date::from_ymd(2024, 2, 1).unwrap(),
    );
    let ts: Range<Timestamp> = Range::Bounds(
        Bound::Included("2024-01-01 10:00:00".parse().unwrap()),
        Bound::Unbounded,
    );
    let fr: Range<f64> = Range::Bounds(Bound::Included(0.5), Bound::Included(1.5));
    let row = c
        .query_one(
            "SELECT $1::numrange, $2::daterange, $3::tsrange, $4::floatrange",
            &[&num, &d, &ts, &fr],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Range<Numeric>>(0), num);
    assert_eq!(row.get::<_, Range<Date>>(1), d);
    assert_eq!(row.get::<_, Range<Timestamp>>(2), ts);
    assert_eq!(row.get::<_, Range<f64>>(3), fr);
    assert_eq!(row.columns()[3].type_().to_string(), "ut_range.floatrange");
    // Text format (simple protocol), including quoted timestamp bounds.
    let row = simple(
        &mut c,
        "SELECT '[1,5]'::int4range, '[2024-01-01 10:00,)'::tsrange, 'empty'::daterange, \
         '[0.5,1.5]'::floatrange",
    )
    .await;
    assert_eq!(row.get::<_, Range<i32>>(0), Range::half_open(1, 6));
    assert_eq!(row.get::<_, Range<Timestamp>>(1), ts);
    assert_eq!(row.get::<_, Range<Date>>(2), Range::Empty);
    assert_eq!(row.get::<_, Range<f64>>(3), fr);
    assert!(matches!(row.get::<_, Value>(0), Value::Range(_)));
    // The wrong Rust type for the bounds is refused by name.
    let e = c.execute("SELECT $1::daterange", &[&r]).await.unwrap_err();
    assert!(e.to_string().contains("daterange"), "{e}");
}

#[tokio::test]
async fn inet_cidr_and_macaddr_round_trip() {
    let mut c = common::admin().await;
    let v4 = Inet::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 7)), 24).unwrap();
    let net = Inet::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8).unwrap();
    let v6 = Inet::host(IpAddr::V6(Ipv6Addr::LOCALHOST));
    let mac = MacAddr([0x08, 0x00, 0x2b, 0x01, 0x02, 0x03]);
    let row = c
        .query_one(
            "SELECT $1::inet, $2::cidr, $3::inet, $4::macaddr, $1::inet::text, $4::macaddr::text",
            &[&v4, &net, &v6, &mac],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Inet>(0), v4);
    assert_eq!(row.get::<_, Inet>(1), net);
    assert_eq!(row.get::<_, Inet>(2), v6);
    assert_eq!(row.get::<_, MacAddr>(3), mac);
    assert_eq!(row.get::<_, String>(4), "192.168.1.7/24");
    assert_eq!(row.get::<_, String>(5), "08:00:2b:01:02:03");
    assert_eq!(row.get::<_, Value>(1), Value::Cidr(net));
    let row = simple(
        &mut c,
        "SELECT '192.168.1.7/24'::inet, '10.0.0.0/8'::cidr, '::1'::inet, '08:00:2b:01:02:03'::macaddr",
    )
    .await;
    assert_eq!(row.get::<_, Inet>(0), v4);
    assert_eq!(row.get::<_, Inet>(1), net);
    assert_eq!(row.get::<_, Inet>(2), v6);
    assert_eq!(row.get::<_, MacAddr>(3), mac);
    // A cidr with host bits set is the server's error.
    let bad = Inet::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 8).unwrap();
    assert!(c.execute("SELECT $1::cidr", &[&bad]).await.is_err());
    let arr = c
        .query_one("SELECT ARRAY[$1::inet, NULL]", &[&v4])
        .await
        .unwrap();
    assert_eq!(arr.get::<_, Vec<Option<Inet>>>(0), [Some(v4), None]);
}

#[tokio::test]
async fn types_are_looked_up_once_per_pool() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_cache").await;
    c.batch_execute("CREATE TYPE lvl AS ENUM ('lo', 'hi'); CREATE TABLE ev (l lvl)")
        .await
        .unwrap();
    let pool = common::started(common::pool_builder("ut_cache", 3)).await;
    let cache = pool.type_cache().clone();
    assert_eq!(cache.lookups(), 0);
    // Built-in types never cause a lookup.
    pool.execute("SELECT 1::int4, 'x'::text, now()", &[])
        .await
        .unwrap();
    assert_eq!(cache.lookups(), 0);
    pool.execute("INSERT INTO ut_cache.ev VALUES ($1)", &[&"hi"])
        .await
        .unwrap();
    assert_eq!(cache.lookups(), 1);
    assert!(
        cache
            .get(
                c.query_one("SELECT 'ut_cache.lvl'::regtype::oid", &[])
                    .await
                    .unwrap()
                    .get(0)
            )
            .is_some()
    );
    // Other statements, and other connections of the pool, find it cached.
    let mut a = pool.connection().await.unwrap();
    let mut b = pool.connection().await.unwrap();
    for conn in [&mut a, &mut b] {
        let row = conn
            .query_one("SELECT l FROM ut_cache.ev WHERE l = $1", &[&"hi"])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "hi");
        let row = conn
            .query_one("SELECT ARRAY[l] FROM ut_cache.ev", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, Vec<String>>(0), ["hi"]);
    }
    // The array type lvl[] is a second type; it needed its own lookup once.
    let after = cache.lookups();
    assert!(after <= 2, "{after}");
    let mut a2 = pool.connection().await.unwrap();
    a2.query_one(
        "SELECT ARRAY[l], l FROM ut_cache.ev WHERE l <> $1",
        &[&"lo"],
    )
    .await
    .unwrap();
    a2.simple_query("SELECT l FROM ut_cache.ev").await.unwrap();
    assert_eq!(cache.lookups(), after);
    drop((a, b, a2));
    pool.close().await;
}

// ---- derives -----------------------------------------------------------------------------

mod derives {
    use pool_core::{FromRow, FromSql, ToSql};

    /// Rust names in PascalCase, labels in snake_case; one label renamed by hand.
    #[derive(Debug, Clone, Copy, PartialEq, ToSql, FromSql)]
    #[psqlpool(rename_all = "snake_case", name = "order_state")]
    pub enum OrderState {
        New,
        InTransit,
        #[psqlpool(rename = "done!")]
        Done,
    }

    #[derive(Debug, Clone, PartialEq, ToSql, FromSql)]
    pub struct Money {
        pub currency: String,
        #[psqlpool(rename = "cents")]
        pub amount: i64,
        pub state: Option<OrderState>,
    }

    #[derive(Debug, PartialEq, FromRow)]
    pub struct Audit {
        pub created_by: String,
        #[psqlpool(default)]
        pub note: Option<String>,
        #[psqlpool(default)]
        pub revision: i32,
    }

    #[derive(Debug, PartialEq, FromRow)]
    #[psqlpool(rename_all = "camelCase")]
    pub struct Order {
        pub order_id: i64,
        #[psqlpool(rename = "st")]
        pub state: OrderState,
        pub price: Money,
        pub comment: Option<String>,
        #[psqlpool(flatten)]
        pub audit: Audit,
    }

    #[allow(dead_code)] // only its errors are read
    #[derive(Debug, FromRow)]
    pub struct Strict {
        pub id: i32,
        pub missing_here: i32,
    }

    #[allow(dead_code)] // only its errors are read
    #[derive(Debug, FromRow)]
    pub struct NotNull {
        pub id: i32,
        pub comment: String,
    }
}

use derives::{Audit, Money, NotNull, Order, OrderState, Strict};

#[tokio::test]
async fn derived_enum_with_rename_all_round_trips() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_derive_enum").await;
    c.batch_execute("CREATE TYPE order_state AS ENUM ('new', 'in_transit', 'done!', 'lost')")
        .await
        .unwrap();
    for s in [OrderState::New, OrderState::InTransit, OrderState::Done] {
        let row = c
            .query_one(
                "SELECT $1::order_state AS s, $1::order_state::text AS t",
                &[&s],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, OrderState>("s"), s);
        let label = row.get::<_, String>("t");
        assert_eq!(
            label,
            match s {
                OrderState::New => "new",
                OrderState::InTransit => "in_transit",
                OrderState::Done => "done!",
            }
        );
        let row = simple(&mut c, &format!("SELECT '{label}'::order_state")).await;
        assert_eq!(row.get::<_, OrderState>(0), s);
        let arr = c
            .query_one("SELECT ARRAY[$1::order_state, NULL]", &[&s])
            .await
            .unwrap();
        assert_eq!(arr.get::<_, Vec<Option<OrderState>>>(0), [Some(s), None]);
    }
    // A label the Rust enum lacks, and a type of another name, are clear errors.
    let row = c
        .query_one("SELECT 'lost'::order_state", &[])
        .await
        .unwrap();
    let msg = row.try_get::<_, OrderState>(0).unwrap_err().to_string();
    assert!(
        msg.contains("\"lost\"") && msg.contains("OrderState"),
        "{msg}"
    );
    c.batch_execute("CREATE TYPE other_state AS ENUM ('new', 'in_transit', 'done!')")
        .await
        .unwrap();
    let e = c
        .execute("SELECT $1::other_state", &[&OrderState::New])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ut_derive_enum.other_state"), "{e}");
}

#[tokio::test]
async fn derived_composite_struct_round_trips() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_derive_comp").await;
    c.batch_execute(
        "CREATE TYPE order_state AS ENUM ('new', 'in_transit', 'done!');
         CREATE TYPE amount_t AS (currency text, cents int8, state order_state);
         CREATE TABLE wallet (m amount_t, ms amount_t[])",
    )
    .await
    .unwrap();
    let m = Money {
        currency: "EUR, \"euro\"".into(),
        amount: -1234,
        state: Some(OrderState::InTransit),
    };
    let bare = Money {
        currency: "USD".into(),
        amount: 5,
        state: None,
    };
    c.execute(
        "INSERT INTO wallet VALUES ($1, $2)",
        &[&m, &vec![bare.clone(), m.clone()]],
    )
    .await
    .unwrap();
    let row = c
        .query_one("SELECT m, ms, (m).cents FROM wallet", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Money>("m"), m);
    assert_eq!(row.get::<_, Vec<Money>>("ms"), [bare.clone(), m.clone()]);
    assert_eq!(row.get::<_, i64>("cents"), -1234);
    // Text format, fields without escapes.
    let row = simple(&mut c, "SELECT ROW('USD', 5, NULL)::amount_t").await;
    assert_eq!(row.get::<_, Money>(0), bare);
}

#[tokio::test]
async fn from_row_maps_renames_options_flatten_and_defaults() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_derive_row").await;
    c.batch_execute(
        "CREATE TYPE order_state AS ENUM ('new', 'in_transit', 'done!');
         CREATE TYPE amount_t AS (currency text, cents int8, state order_state)",
    )
    .await
    .unwrap();
    let sql = "SELECT 7::int8 AS \"orderId\", 'done!'::order_state AS st, \
               ROW('EUR', 100, NULL)::amount_t AS price, NULL::text AS comment, \
               'alice' AS created_by, 'n' AS note";
    let res = c.execute(sql, &[]).await.unwrap();
    let orders: Vec<Order> = res.rows_as().unwrap();
    let expect = Order {
        order_id: 7,
        state: OrderState::Done,
        price: Money {
            currency: "EUR".into(),
            amount: 100,
            state: None,
        },
        comment: None,
        audit: Audit {
            created_by: "alice".into(),
            note: Some("n".into()),
            revision: 0,
        },
    };
    assert_eq!(orders, [expect]);
    // The same through the simple protocol (text format), and through the pool.
    let res = c.simple_query(sql).await.unwrap().pop().unwrap();
    let o: Order = res.one_as().unwrap();
    assert_eq!(o.audit.created_by, "alice");
    assert_eq!(o.state, OrderState::Done);
    let pool = common::started(common::pool_builder("ut_derive_row", 2)).await;
    let res = pool
        .execute(
            "SELECT 1 AS \"orderId\", 'new'::ut_derive_row.order_state AS st, \
             ROW('USD', 1, 'new')::ut_derive_row.amount_t AS price, 'hi' AS comment, \
             'bob' AS created_by, 3 AS revision",
            &[],
        )
        .await
        .unwrap();
    let o: Order = res.rows()[0].to().unwrap();
    assert_eq!(o.comment.as_deref(), Some("hi"));
    assert_eq!(o.audit.note, None);
    assert_eq!(o.audit.revision, 3);
    pool.close().await;
}

#[tokio::test]
async fn from_row_errors_name_the_column_and_the_field() {
    let mut c = common::admin().await;
    let res = c
        .execute("SELECT 1 AS id, 2 AS missing_there", &[])
        .await
        .unwrap();
    let msg = res.rows_as::<Strict>().unwrap_err().to_string();
    assert!(msg.contains("Strict.missing_here"), "{msg}");
    assert!(msg.contains("no column missing_here"), "{msg}");
    assert!(msg.contains("id, missing_there"), "{msg}");

    let res = c
        .execute("SELECT 1 AS id, NULL::text AS comment", &[])
        .await
        .unwrap();
    let msg = res.one_as::<NotNull>().unwrap_err().to_string();
    assert!(msg.contains("NotNull.comment"), "{msg}");
    assert!(msg.contains("NULL"), "{msg}");

    let res = c
        .execute("SELECT 'x' AS id, 'y' AS comment", &[])
        .await
        .unwrap();
    let msg = res.one_as::<NotNull>().unwrap_err().to_string();
    assert!(
        msg.contains("NotNull.id") && msg.contains("of type text as i32"),
        "{msg}"
    );
    // one_as insists on one row.
    let res = c
        .execute(
            "SELECT 1 AS id, 'a' AS comment FROM generate_series(1, 2)",
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(
        res.one_as::<NotNull>(),
        Err(Error::RowCount { got: 2, .. })
    ));
}

#[tokio::test]
async fn unprepared_and_one_trip_paths_look_types_up_too() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_paths").await;
    c.batch_execute("CREATE TYPE tone AS ENUM ('low', 'high')")
        .await
        .unwrap();
    // The unnamed statement: the lookup ends the unfinished request and describes again.
    let mut u = common::admin().await;
    let res = u
        .execute_unprepared("SELECT $1::ut_paths.tone AS t", &[&"high"])
        .await
        .unwrap();
    assert_eq!(res.rows()[0].get::<_, String>("t"), "high");
    assert_eq!(u.type_cache().lookups(), 1);
    assert!(!u.in_transaction() && !u.has_pending());
    // One round trip with value-declared types: the columns are looked up after the result.
    let mut o = common::admin().await;
    o.set_param_types(pgwire_lite::ParamTypes::FromValues);
    let res = o
        .execute("SELECT 'low'::ut_paths.tone AS t, $1::int4 AS n", &[&1i32])
        .await
        .unwrap();
    assert_eq!(
        res.rows()[0].get::<_, Value>("t"),
        Value::Enum("low".into())
    );
    assert_eq!(res.columns()[0].type_().to_string(), "ut_paths.tone");
    // The re-cached statement carries the looked-up type: no second lookup.
    let res = o
        .execute("SELECT 'low'::ut_paths.tone AS t, $1::int4 AS n", &[&2i32])
        .await
        .unwrap();
    assert_eq!(res.rows()[0].get::<_, String>("t"), "low");
    assert_eq!(o.type_cache().lookups(), 1);
}

/// With the `serde` feature, results holding the new kinds of values serialize too: an enum
/// as its label, a composite as an object of its fields (as the server's `to_json` writes
/// both), network types as their text, a range as its bounds.
#[tokio::test]
async fn user_types_serialize_with_serde() {
    let mut c = common::admin().await;
    schema(&mut c, "ut_serde").await;
    c.batch_execute(
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE TYPE pair AS (a int4, b text)",
    )
    .await
    .unwrap();
    let res = c
        .execute(
            "SELECT 'happy'::mood AS m, ROW(1, 'x')::pair AS p, '10.0.0.1/8'::inet AS i, \
             '08:00:2b:01:02:03'::macaddr AS mac, int4range(1, 5) AS r, \
             'empty'::int4range AS e",
            &[],
        )
        .await
        .unwrap();
    let json = serde_json::to_value(&res).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "m": "happy",
            "p": {"a": 1, "b": "x"},
            "i": "10.0.0.1/8",
            "mac": "08:00:2b:01:02:03",
            "r": {"lower": 1, "upper": 5, "lower_inc": true, "upper_inc": false},
            "e": "empty",
        }])
    );
}
