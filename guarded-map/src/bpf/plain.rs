//! [`Plain`]: keys and values the kernel copies byte for byte, and their bytes.

/// Plain fixed-size data that the kernel copies in and out byte for byte.
///
/// # Safety
///
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid value, and the type must have no
/// padding (the kernel compares keys byte for byte).
pub unsafe trait Plain: Copy + Default + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive integer: every bit pattern is a value, no padding.
        unsafe impl Plain for $t {}
    )* };
}
plain!(u8, u16, u32, u64, i8, i16, i32, i64);

// SAFETY: an array of plain values has no padding between its elements and every bit pattern of
// each element is a value.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] where [T; N]: Default {}

/// The bytes of a plain value.
pub(super) fn bytes_of<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: `T` has no padding (`Plain`), so all its bytes are initialised.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(value).cast(), size_of::<T>()) }
}

/// The bytes of a plain value, to overwrite.
pub(super) fn bytes_of_mut<T: Plain>(value: &mut T) -> &mut [u8] {
    // SAFETY: `T` has no padding and any bytes are a valid `T` (`Plain`).
    unsafe { std::slice::from_raw_parts_mut(std::ptr::from_mut(value).cast(), size_of::<T>()) }
}
