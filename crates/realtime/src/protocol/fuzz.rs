//! Property tests over the client frame decoders: text frames (vsn 1.0.0 objects, vsn 2.0.0
//! arrays), kind-3 binary frames, the lazy envelope path the socket uses, and encoding what was
//! decoded. No input may panic; well-formed frames decode to what was sent. A few thousand cases
//! by default (seconds); `PROPTEST_CASES=1000000` for a long run.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Quarters read back exactly (serde_json without float_roundtrip reads some floats one
        // ulp off, which is not the decoder's doing).
        any::<i32>().prop_map(|i| Value::from(f64::from(i) / 4.0)),
        "\\PC{0,12}".prop_map(Value::from),
        "[\\x00-\\x1f\"\\\\]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map("\\PC{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A value in a ref, topic or event position: mostly what clients send, sometimes not.
fn field() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => "\\PC{0,16}".prop_map(Value::from),
        2 => "realtime:[a-z0-9:\\-]{0,12}".prop_map(Value::from),
        1 => any::<u32>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => json(),
    ]
}

/// A text frame: a well-formed one of either serializer, or one with fields missing, extra or
/// of the wrong kind, or cut short.
fn text_frame() -> impl Strategy<Value = String> {
    let v1 = (
        field(),
        field(),
        field(),
        field(),
        json(),
        vec(any::<bool>(), 5),
    )
        .prop_map(|(jr, r, t, e, p, keep)| {
            let mut m = Map::new();
            for (k, (v, keep)) in ["join_ref", "ref", "topic", "event", "payload"]
                .iter()
                .zip([jr, r, t, e, p].into_iter().zip(keep))
            {
                if keep {
                    m.insert((*k).into(), v);
                }
            }
            Value::Object(m).to_string()
        });
    let v2 =
        vec(prop_oneof![field(), json()], 0..8).prop_map(|items| Value::Array(items).to_string());
    let whole = prop_oneof![v1, v2];
    prop_oneof![
        4 => whole.clone(),
        2 => (whole, any::<prop::sample::Index>()).prop_map(|(s, at)| {
            let mut cut = at.index(s.len() + 1);
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s[..cut].to_owned()
        }),
        1 => "\\PC{0,64}",
        1 => "[\\[\\]{}\",:0-9a-z \\\\]{0,64}",
    ]
}

/// A kind-3 frame: five parts with their true lengths (or lying ones) and a JSON or raw body.
fn binary_frame() -> impl Strategy<Value = Vec<u8>> {
    let part = || vec(any::<u8>(), 0..20);
    let honest = (
        vec(part(), 5),
        prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        prop_oneof![
            json().prop_map(|v| v.to_string().into_bytes()),
            vec(any::<u8>(), 0..40)
        ],
    )
        .prop_map(|(parts, encoding, body)| {
            let mut f = vec![3u8];
            f.extend(parts.iter().map(|p| p.len() as u8));
            f.push(encoding);
            for p in &parts {
                f.extend_from_slice(p);
            }
            f.extend(body);
            f
        });
    let lying = (vec(any::<u8>(), 6), vec(any::<u8>(), 0..80)).prop_map(|(head, rest)| {
        let mut f = vec![3u8];
        f.extend(head);
        f.extend(rest);
        f
    });
    prop_oneof![3 => honest, 2 => lying, 1 => vec(any::<u8>(), 0..64)]
}

/// Decodes a text frame both ways the socket can, encodes what came out, and checks the two
/// paths agree.
fn text_round(vsn: Vsn, text: &str) -> Result<(), TestCaseError> {
    let full = decode_text(vsn, text);
    if let Ok(msg) = &full {
        let _ = encode(vsn, msg);
        let _ = encode(other(vsn), msg);
        let back = decode_text(vsn, &encode_text(vsn, msg));
        prop_assert_eq!(back.as_ref().map(|m| &m.topic), Ok(&msg.topic));
    }
    if let Ok(env) = envelope_text(vsn, text) {
        let (topic, event) = (env.topic.clone(), env.event.clone());
        match env.message() {
            Ok(msg) => {
                prop_assert_eq!(&msg.topic, &topic);
                prop_assert_eq!(&msg.event, &event);
            }
            Err(_) => prop_assert!(full.is_err()),
        }
    }
    if let Ok(env) = envelope_text(vsn, text) {
        let bare = env.bare();
        prop_assert_eq!(bare.payload, Value::Null);
    }
    Ok(())
}

fn other(vsn: Vsn) -> Vsn {
    match vsn {
        Vsn::V1 => Vsn::V2,
        Vsn::V2 => Vsn::V1,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn text_frames_never_panic(text in text_frame()) {
        text_round(Vsn::V1, &text)?;
        text_round(Vsn::V2, &text)?;
    }

    #[test]
    fn well_formed_frames_decode_to_what_was_sent(
        join_ref in proptest::option::of("[0-9]{1,4}"),
        msg_ref in proptest::option::of("[0-9]{1,4}"),
        topic in "\\PC{0,40}",
        event in "\\PC{0,16}",
        payload in json(),
    ) {
        let sent = Message {
            join_ref,
            msg_ref,
            topic,
            event,
            payload,
            raw: None,
            payload_text: None,
        };
        for vsn in [Vsn::V1, Vsn::V2] {
            let text = encode_text(vsn, &sent);
            let got = decode_text(vsn, &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&got, &sent);
            let lazy = envelope_text(vsn, &text).and_then(Envelope::message);
            prop_assert_eq!(lazy.as_ref(), Ok(&sent));
        }
    }

    #[test]
    fn binary_frames_never_panic(frame in binary_frame()) {
        let full = decode_binary(&frame);
        if let Ok(msg) = &full {
            let _ = encode(Vsn::V2, msg);
            let _ = encode(Vsn::V1, msg);
            prop_assert!(msg.raw.is_none() || msg.payload["payload"].is_null(), "bytes never become JSON");
        }
        if let Ok(env) = envelope_binary(&frame) {
            prop_assert_eq!(env.message().is_ok(), full.is_ok());
        }
    }
}
