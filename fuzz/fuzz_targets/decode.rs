//! Fuzzes the event decoders with arbitrary record values: neither panics, the fast
//! `decode_each` agrees with the precise `decode` event by event (the same events, or the same
//! index, field and reason), and every event decoded round-trips through its JSON form.

#![no_main]

use dataflow::event::{EventError, EventRef, decode, decode_all, decode_each};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let precise = decode(data);
    let mut fast: Vec<Result<EventRef<'_>, EventError>> = Vec::new();
    decode_each(data, |event| fast.push(event));
    assert_eq!(fast.len(), precise.len());
    for (f, p) in fast.iter().zip(&precise) {
        match (f, p) {
            (Ok(f), Ok(p)) => assert_eq!(f, &EventRef::from(p.clone())),
            (Err(f), Err(p)) => {
                assert_eq!((f.index, &f.field, f.reason), (p.index, &p.field, p.reason));
            }
            _ => panic!("the decoders disagree: fast {f:?}, precise {p:?}"),
        }
    }
    for event in precise.iter().flatten() {
        let bytes = serde_json::to_vec(event).expect("an event serializes");
        assert_eq!(decode_all(&bytes).expect("it decodes again"), vec![event.clone()]);
    }
});
