//! Money, quantities and prices as integers with their units fixed once.
//!
//! `Quantity` counts kilograms of contained material, `Money` counts US cents, and `Price` is US
//! cents per kilogram. World state never holds a float: where a computation divides, the function
//! name says how it rounds. Products are taken in `i128` so no realistic value overflows.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// A mass of material in kilograms (of contained metal or oxide, as the commodity states).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Quantity(pub i64);

/// An amount of money in US cents. An `i64` holds ±92 quadrillion dollars, so national budgets fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Money(pub i64);

/// A price in US cents per kilogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Price(pub i64);

macro_rules! arithmetic {
    ($t:ident) => {
        impl Add for $t {
            type Output = $t;
            fn add(self, rhs: $t) -> $t {
                $t(self.0 + rhs.0)
            }
        }
        impl Sub for $t {
            type Output = $t;
            fn sub(self, rhs: $t) -> $t {
                $t(self.0 - rhs.0)
            }
        }
        impl AddAssign for $t {
            fn add_assign(&mut self, rhs: $t) {
                self.0 += rhs.0;
            }
        }
        impl SubAssign for $t {
            fn sub_assign(&mut self, rhs: $t) {
                self.0 -= rhs.0;
            }
        }
        impl Neg for $t {
            type Output = $t;
            fn neg(self) -> $t {
                $t(-self.0)
            }
        }
        impl std::iter::Sum for $t {
            fn sum<I: Iterator<Item = $t>>(iter: I) -> $t {
                iter.fold($t(0), |a, b| a + b)
            }
        }
    };
}
arithmetic!(Quantity);
arithmetic!(Money);
arithmetic!(Price);

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    pub fn min(self, other: Quantity) -> Quantity {
        Quantity(self.0.min(other.0))
    }

    pub fn max(self, other: Quantity) -> Quantity {
        Quantity(self.0.max(other.0))
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// `self * num / den`, rounded toward zero.
    pub fn scale_floor(self, num: i64, den: i64) -> Quantity {
        Quantity(mul_div_trunc(self.0, num, den))
    }
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// `self * num / den`, rounded toward zero.
    pub fn scale_floor(self, num: i64, den: i64) -> Money {
        Money(mul_div_trunc(self.0, num, den))
    }
}

impl Price {
    pub const ZERO: Price = Price(0);

    /// The value of `quantity` at this price, exact (both are integers in their base units).
    /// Saturates rather than wraps for absurd inputs, which validation rejects anyway.
    pub fn value_of(self, quantity: Quantity) -> Money {
        let v = self.0 as i128 * quantity.0 as i128;
        Money(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    /// `self * num / den`, rounded toward zero.
    pub fn scale_floor(self, num: i64, den: i64) -> Price {
        Price(mul_div_trunc(self.0, num, den))
    }

    /// `self * num / den`, rounded up (for positive values).
    pub fn scale_ceil(self, num: i64, den: i64) -> Price {
        debug_assert!(den > 0);
        // The common case fits in 64 bits; the 128-bit path gives the same result when it doesn't.
        if let Some(n) = self.0.checked_mul(num).and_then(|n| n.checked_add(den - 1)) {
            return Price(n.div_euclid(den));
        }
        let n = self.0 as i128 * num as i128;
        let d = den as i128;
        Price(((n + d - 1).div_euclid(d)) as i64)
    }

    /// The midpoint of two prices, rounded down.
    pub fn midpoint_floor(a: Price, b: Price) -> Price {
        Price(((a.0 as i128 + b.0 as i128).div_euclid(2)) as i64)
    }

    /// How many whole kilograms `budget` buys at this price (rounded down); zero for a free price.
    pub fn affordable(self, budget: Money) -> Quantity {
        if self.0 <= 0 || budget.0 <= 0 {
            return Quantity::ZERO;
        }
        Quantity(budget.0 / self.0)
    }
}

/// `a * num / den` rounded toward zero, exact: in 64 bits when the product fits (the common
/// case, and much cheaper), in 128 bits otherwise. Both give the same result.
#[inline]
fn mul_div_trunc(a: i64, num: i64, den: i64) -> i64 {
    debug_assert!(den > 0);
    match a.checked_mul(num) {
        Some(p) => p / den,
        None => ((a as i128 * num as i128) / den as i128) as i64,
    }
}

/// Basis points: 1/100 of a percent. Rates and tariffs are kept in these.
pub const BP_PER_ONE: i64 = 10_000;

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} kg", self.0)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}", abs / 100, abs % 100)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}/kg", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_exact_and_saturates() {
        assert_eq!(Price(3_300).value_of(Quantity(1_000)), Money(3_300_000));
        assert_eq!(Price(i64::MAX).value_of(Quantity(3)), Money(i64::MAX));
    }

    #[test]
    fn rounding_is_named() {
        assert_eq!(Price(10).scale_floor(1, 3), Price(3));
        assert_eq!(Price(10).scale_ceil(1, 3), Price(4));
        assert_eq!(Price::midpoint_floor(Price(3), Price(6)), Price(4));
        assert_eq!(Price(7).affordable(Money(50)), Quantity(7));
    }

    #[test]
    fn the_fast_path_agrees_with_128_bit_arithmetic() {
        for &(a, n, d) in
            &[(7i64, 3i64, 2i64), (-7, 3, 2), (i64::MAX / 2, 3, 7), (i64::MIN / 3, 5, 9), (123_456_789, 10_000, 9_999)]
        {
            let wide = ((a as i128 * n as i128) / d as i128) as i64;
            assert_eq!(mul_div_trunc(a, n, d), wide);
            let ceil = ((a as i128 * n as i128 + d as i128 - 1).div_euclid(d as i128)) as i64;
            if a >= 0 {
                assert_eq!(Price(a).scale_ceil(n, d).0, ceil);
            }
        }
    }

    #[test]
    fn money_displays_in_dollars() {
        assert_eq!(Money(-12_345).to_string(), "-$123.45");
        assert_eq!(Price(3_305).to_string(), "$33.05/kg");
    }
}
