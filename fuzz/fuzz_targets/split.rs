//! Input layout shared by the stream targets: the first byte gives how many cut points follow
//! (0-15, two bytes each), the rest is the byte stream; the stream is fed whole and cut there.
pub fn cuts(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(n % 16).min(rest.len() / 2);
    let (raw, stream) = rest.split_at(n * 2);
    let cuts = raw
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    (cuts, stream)
}
