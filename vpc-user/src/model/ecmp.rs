//! Which hop each of a group's 256 slots sends flows to. A flow's hash picks the slot, so a flow
//! stays on its hop as long as the slot does; when a hop goes down only its slots are handed to
//! the live hops, and they come back to it when it recovers.

use vpc_common::{GROUP_SLOTS, NO_HOP};

/// Slots for hops of `weights`, of which `live` are up. Slots go round-robin by weight (smooth
/// weighted round-robin, so equal weights interleave); a down hop's slots go round-robin by
/// weight over the live hops. A hop of weight 0 gets slots only when every hop with a weight is
/// down (the standby of an active/standby pair).
pub fn slots(weights: &[u8], live: &[bool]) -> [u8; GROUP_SLOTS] {
    let all: Vec<usize> = (0..weights.len()).collect();
    let mut out: [u8; GROUP_SLOTS] = round_robin(weights, &all, GROUP_SLOTS).try_into().expect("GROUP_SLOTS picks");
    let alive: Vec<usize> = all.iter().copied().filter(|&i| live.get(i).copied().unwrap_or(false)).collect();
    let dead: Vec<usize> = (0..GROUP_SLOTS).filter(|&s| out[s] == NO_HOP || !alive.contains(&usize::from(out[s]))).collect();
    if dead.is_empty() {
        return out;
    }
    let spare = round_robin(weights, &alive, dead.len());
    for (slot, hop) in dead.into_iter().zip(spare) {
        out[slot] = hop;
    }
    out
}

/// `n` picks among `candidates` in smooth weighted round-robin order; if all their weights are 0
/// they share equally; with no candidates, NO_HOP.
fn round_robin(weights: &[u8], candidates: &[usize], n: usize) -> Vec<u8> {
    if candidates.is_empty() {
        return vec![NO_HOP; n];
    }
    let weight = |i: usize| -> i64 {
        let all_zero = candidates.iter().all(|&c| weights[c] == 0);
        if all_zero { 1 } else { i64::from(weights[i]) }
    };
    let total: i64 = candidates.iter().map(|&i| weight(i)).sum();
    let mut current = vec![0i64; weights.len()];
    (0..n)
        .map(|_| {
            for &i in candidates {
                current[i] += weight(i);
            }
            let best = *candidates.iter().max_by_key(|&&i| (current[i], std::cmp::Reverse(i))).expect("candidates");
            current[best] -= total;
            best as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(slots: &[u8; GROUP_SLOTS], hop: u8) -> usize {
        slots.iter().filter(|s| **s == hop).count()
    }

    #[test]
    fn weights_split_the_slots() {
        let s = slots(&[100, 100, 100, 100], &[true; 4]);
        assert!((0..4).all(|h| share(&s, h) == 64));
        let s = slots(&[200, 100], &[true, true]);
        assert_eq!((share(&s, 0), share(&s, 1)), (171, 85));
        // active/standby: everything to the active hop while it lives
        assert_eq!(share(&slots(&[100, 0], &[true, true]), 0), 256);
        assert_eq!(share(&slots(&[100, 0], &[false, true]), 1), 256);
        assert!(slots(&[100, 0], &[false, false]).iter().all(|s| *s == NO_HOP));
    }

    #[test]
    fn only_the_down_hops_slots_move_and_they_come_back() {
        let up = slots(&[100, 100, 100, 100], &[true; 4]);
        let down = slots(&[100, 100, 100, 100], &[true, false, true, true]);
        for i in 0..GROUP_SLOTS {
            if up[i] != 1 {
                assert_eq!(down[i], up[i], "slot {i} of a live hop moved");
            } else {
                assert_ne!(down[i], 1);
            }
        }
        // The freed slots spread evenly over the three live hops.
        for h in [0, 2, 3] {
            assert!((85..=86).contains(&share(&down, h)), "{h}: {}", share(&down, h));
        }
        assert_eq!(slots(&[100, 100, 100, 100], &[true; 4]), up, "recovery restores the original slots");
    }
}
