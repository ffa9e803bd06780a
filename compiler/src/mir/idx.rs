//! Typed indices and the arena that they index.
//!
//! A graph refers to its nodes and monoids by small integer ids ([`NodeId`](super::NodeId),
//! [`MonoidId`](super::MonoidId)) rather than by pointers, so it can be cloned, compared,
//! printed and rewritten freely. An [`IdxVec`] is a `Vec` that only its own id type can index,
//! which keeps a node id from being used to look up a monoid by mistake.

use std::fmt;
use std::marker::PhantomData;
use std::ops;

/// A typed index: a newtype around a `u32` position in an [`IdxVec`].
pub trait Idx: Copy + Eq {
    /// The id of position `index`.
    ///
    /// # Panics
    ///
    /// Panics when `index` does not fit in a `u32`; no arena grows that large.
    fn new(index: usize) -> Self;

    /// The position that the id names.
    fn index(self) -> usize;
}

/// Declares a `u32` newtype that implements [`Idx`] and displays as `prefix` + number.
macro_rules! define_idx {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $crate::mir::idx::Idx for $name {
            fn new(index: usize) -> Self {
                $name(u32::try_from(index).expect("arena index fits in u32"))
            }

            fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }
    };
}
pub(crate) use define_idx;

/// A vector indexed by a typed id `I`.
#[derive(Clone, PartialEq)]
pub struct IdxVec<I, T> {
    /// The elements, in id order.
    pub raw: Vec<T>,
    marker: PhantomData<fn(I) -> I>,
}

impl<I: Idx, T> IdxVec<I, T> {
    /// An empty vector.
    pub fn new() -> Self {
        IdxVec {
            raw: Vec::new(),
            marker: PhantomData,
        }
    }

    /// Appends an element and returns its id.
    pub fn push(&mut self, value: T) -> I {
        let id = I::new(self.raw.len());
        self.raw.push(value);
        id
    }

    /// The element with id `id`, or `None` when there is no such element.
    pub fn get(&self, id: I) -> Option<&T> {
        self.raw.get(id.index())
    }

    /// The element with id `id`, mutably, or `None` when there is no such element.
    pub fn get_mut(&mut self, id: I) -> Option<&mut T> {
        self.raw.get_mut(id.index())
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The elements in id order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.raw.iter()
    }

    /// The elements in id order, each with its id.
    pub fn iter_enumerated(&self) -> impl Iterator<Item = (I, &T)> + '_ {
        self.raw.iter().enumerate().map(|(i, t)| (I::new(i), t))
    }

    /// The elements in id order, each with its id, mutably.
    pub fn iter_mut_enumerated(&mut self) -> impl Iterator<Item = (I, &mut T)> + '_ {
        self.raw.iter_mut().enumerate().map(|(i, t)| (I::new(i), t))
    }

    /// The ids of all elements, in order.
    pub fn ids(&self) -> impl Iterator<Item = I> + use<I, T> {
        (0..self.raw.len()).map(I::new)
    }
}

impl<I: Idx, T> Default for IdxVec<I, T> {
    fn default() -> Self {
        IdxVec::new()
    }
}

impl<I: Idx, T> From<Vec<T>> for IdxVec<I, T> {
    fn from(raw: Vec<T>) -> Self {
        IdxVec {
            raw,
            marker: PhantomData,
        }
    }
}

impl<I: Idx, T> FromIterator<T> for IdxVec<I, T> {
    fn from_iter<It: IntoIterator<Item = T>>(iter: It) -> Self {
        IdxVec::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<I: Idx, T> ops::Index<I> for IdxVec<I, T> {
    type Output = T;

    /// # Panics
    ///
    /// Panics when there is no element `id`; use [`IdxVec::get`] on unverified graphs.
    fn index(&self, id: I) -> &T {
        &self.raw[id.index()]
    }
}

impl<I: Idx, T> ops::IndexMut<I> for IdxVec<I, T> {
    fn index_mut(&mut self, id: I) -> &mut T {
        &mut self.raw[id.index()]
    }
}

impl<'a, I: Idx, T> IntoIterator for &'a IdxVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.raw.iter()
    }
}

impl<I, T: fmt::Debug> fmt::Debug for IdxVec<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.fmt(f)
    }
}
