//! Deterministic randomness for the traffic model: SplitMix64 streams derived by hashing
//! (seed, minute, subscription, request index), so a request's draws do not depend on how many
//! other requests were simulated before it. Written out here (not `rand`) so the sequence is
//! fixed forever, whatever crate versions change.

/// Mixes several words into one well-distributed seed.
pub fn hash(words: &[u64]) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for &w in words {
        h = mix(h ^ mix(w.wrapping_add(0x632B_E59B_D9B4_E019)));
    }
    h
}

/// A string as a hash word (FNV-1a).
pub fn word(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A log-normal factor with mean 1 and shape `sigma`.
    pub fn lognormal(&mut self, sigma: f64) -> f64 {
        (sigma * self.normal() - sigma * sigma / 2.0).exp()
    }

    /// Poisson-distributed count with mean `lambda` (exact below 30, normal approximation above).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let l = (-lambda).exp();
            let mut k = 0;
            let mut p = 1.0;
            loop {
                p *= self.f64();
                if p <= l {
                    return k;
                }
                k += 1;
            }
        }
        (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64
    }

    /// A random (version 4) GUID as 128 bits (format it with [`guid_text`]).
    pub fn guid(&mut self) -> u128 {
        let a = self.next_u64() as u128;
        let b = self.next_u64() as u128;
        let mut x = (a << 64) | b;
        // Version 4, variant 10xx.
        x = (x & !(0xF000u128 << 64)) | (0x4000u128 << 64);
        x = (x & !(0xC000u128 << 48)) | (0x8000u128 << 48);
        x
    }
}

/// The lower-case `8-4-4-4-12` text of a GUID.
pub fn guid_text(g: u128, out: &mut [u8; 36]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut j = 0;
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out[j] = b'-';
            j += 1;
        }
        out[j] = HEX[((g >> (124 - 4 * i)) & 15) as usize];
        j += 1;
    }
    std::str::from_utf8(out).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_fixed_and_distributions_sane() {
        // The sequence is part of the emulator's contract (seeded history must not change).
        let mut r = Rng::new(hash(&[1, 2, 3]));
        let first = r.next_u64();
        assert_eq!(first, Rng::new(hash(&[1, 2, 3])).next_u64());
        assert_ne!(hash(&[1, 2, 3]), hash(&[1, 2, 4]));
        let mut r = Rng::new(42);
        let n = 20_000;
        let mean_p: f64 = (0..n).map(|_| r.poisson(12.5) as f64).sum::<f64>() / n as f64;
        assert!((mean_p - 12.5).abs() < 0.15, "{mean_p}");
        let mean_big: f64 = (0..n).map(|_| r.poisson(80.0) as f64).sum::<f64>() / n as f64;
        assert!((mean_big - 80.0).abs() < 0.5, "{mean_big}");
        let mean_ln: f64 = (0..n).map(|_| r.lognormal(0.4)).sum::<f64>() / n as f64;
        assert!((mean_ln - 1.0).abs() < 0.02, "{mean_ln}");
        let mut buf = [0u8; 36];
        let g = guid_text(r.guid(), &mut buf).to_string();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert!(matches!(&g[19..20], "8" | "9" | "a" | "b"), "{g}");
        assert_eq!(
            guid_text(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef, &mut buf),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
    }
}
