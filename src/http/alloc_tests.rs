//! The hot path does not allocate once buffers are warm: parsing a typical request and encoding
//! a typical response head are checked with a counting allocator.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the thread-local counter
// is a const-initialised Cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (r, ALLOCS.with(Cell::get) - before)
}

const GET: &[u8] = b"GET /hello/world?name=value&x=%20y HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench\r\n\
Accept: text/html,application/xhtml+xml\r\n\
Accept-Encoding: gzip, deflate\r\n\
Connection: keep-alive\r\n\r\n";

#[test]
fn parsing_a_typical_get_does_not_allocate_when_warm() {
    use super::{Limits, OverflowableBuffer, Request, RequestParser, Status};
    let mut p = RequestParser::new(Limits {
        max_request_header_size: 262_144,
        max_request_body_size: 1 << 30,
    });
    let mut req = Request::new();
    let mut body = OverflowableBuffer::new(524_288);
    assert_eq!(
        allocations(|| Vec::<u8>::with_capacity(8)).1,
        1,
        "the counter counts"
    );
    for round in 0..3 {
        let (r, n) = allocations(|| {
            let r = p.feed(GET, &mut req, &mut body);
            p.reset();
            r
        });
        let r = r.unwrap();
        assert_eq!((r.consumed, r.status), (GET.len(), Status::Complete));
        assert_eq!(req.path(), b"/hello/world");
        if round > 0 {
            assert_eq!(n, 0, "round {round} allocated");
        }
    }
}

#[test]
fn encoding_a_typical_response_does_not_allocate_when_warm() {
    use super::response::ResponseHead;
    use super::{RequestMeta, Version};
    let headers = vec![
        (
            "Content-Type".to_string(),
            "text/plain; charset=utf-8".to_string(),
        ),
        ("Content-Length".to_string(), "12".to_string()),
        ("X-Request-Id".to_string(), "abc".to_string()),
    ];
    let mut out = Vec::new();
    for round in 0..3 {
        out.clear();
        let (enc, n) = allocations(|| {
            let mut enc = ResponseHead {
                request: RequestMeta {
                    version: Version::Http11,
                    keep_alive: true,
                    is_head: false,
                },
                status: "200 OK",
                headers: &headers,
                content_length: Some(12),
                ident: Some("waitress"),
                date: b"Sat, 21 Nov 2026 04:19:33 GMT",
            }
            .encode(&mut out)
            .unwrap();
            let (chunk, _) = enc.encode(b"Hello world!");
            assert_eq!(chunk.len(), 12);
            enc.finish("200 OK")
        });
        assert!(!enc.close);
        if round > 0 {
            assert_eq!(n, 0, "round {round} allocated");
        }
    }
}
