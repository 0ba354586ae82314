//! Compose stacks (spec 3.8.4, 3.8.5; issue 16): a strict subset of the compose specification,
//! deployed over our own Docker client with compose's own labels, so the host's compose CLI and
//! DockMon's stack grouping recognise the stacks.
//!
//! - [`yaml`]: the file → a bounded tree (size, depth, alias expansion), pure.
//! - [`interp`]: `${VAR}` interpolation and env files, pure.
//! - [`model`]: tree → [`model::Project`], every unsupported key refused by name and line, pure.
//! - [`plan`]: a service → Docker's create body and its config hash, pure.
//! - [`up`]: the Docker calls of `up`, `down` and `restart`, reporting stages through a callback.
//! - [`scan`]: `scan_compose_dirs` and `read_compose_file` over the local file system.
//! - [`hostdir`]: `HOST_STACKS_DIR` from `/proc/self/mountinfo` when it is not set, pure.
//! - [`json`]: the writer of the request bodies.
pub mod hostdir;
pub mod interp;
pub mod json;
pub mod model;
pub mod plan;
pub mod scan;
pub mod up;
pub mod yaml;

/// Sorts `v` by `less` (heapsort: not stable, O(n log n), no allocation). One small function for
/// every sort of the compose code instead of the standard library's sorts, whose instances cost
/// several KB of the binary each (issue 16's size budget); the inputs are short lists (labels,
/// env, networks), never on a hot path.
pub fn sort_by<T>(v: &mut [T], less: &dyn Fn(&T, &T) -> bool) {
    fn sift<T>(v: &mut [T], mut root: usize, end: usize, less: &dyn Fn(&T, &T) -> bool) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && less(&v[child], &v[child + 1]) {
                child += 1;
            }
            if !less(&v[root], &v[child]) {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n, less);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end, less);
    }
}

/// [`sort_by`] in `Ord` order.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, &|a, b| a < b);
}

#[cfg(test)]
mod tests {
    #[test]
    fn heapsort_sorts() {
        for n in 0..40u32 {
            let mut v: Vec<u32> = (0..n).map(|i| (i * 7919 + 13) % 23).collect();
            let mut want = v.clone();
            want.sort();
            super::sort(&mut v);
            assert_eq!(v, want);
        }
        let mut p = vec![("b".to_string(), "1".to_string()), ("a".into(), "2".into())];
        super::sort(&mut p);
        assert_eq!(p[0].0, "a");
    }
}
