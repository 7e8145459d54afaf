//! The index image: what a tenant's index built (each part's index over every row, its
//! partitions by dimension and their values, its cohorts, the stage entries), written beside the rows
//! snapshot when kpid stops and read back when it starts, so the first dashboard after a
//! restart reads indexes instead of building them.
//!
//! An image is only read over the rows it was built from, by the build that wrote it:
//! its header names the rows snapshot's token (the store reads the image only after
//! loading that snapshot) and a fingerprint of the executable (the index's layout is the
//! build's own), and the content is cut into the snapshot's checksummed blocks. Every
//! part records its row count and every partition its row positions, checked against the
//! rows before anything is kept. A part the image lacks, or one that does not verify, is
//! built as before, on first read or by the warm-up.
//!
//! ```text
//! file    = "kpidindx" ‖ version u32 ‖ token u64 ‖ block* ‖ end      (snapshot/blocks.rs)
//! content = build u64 ‖ strides (time, sum, block) u32×3 ‖ tenants u32 ‖ tenant*
//! tenant  = name ‖ index
//! index   = per part (deals, customers, …, in `with_parts!` order): part
//!           ‖ stages present bool ‖ [entries ‖ exits part ‖ stays part]
//! part    = rows u64 ‖ the index over every row (`Imaged`)
//!           ‖ partitions u32 ‖ (dimension u32 ‖ values u32 ‖ (value u32 ‖ positions ‖ index)*)*
//!           ‖ value lists u32 ‖ (dimension u32 ‖ values)*
//!           ‖ cohorts present bool ‖ [rows by acquisition (optional)
//!             ‖ windows u32 ‖ (start ‖ end ‖ positions ‖ index)*]
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::cohort::CohortPartitions;
use super::delta::LayeredPart;
use super::part::{KindIndex, Part, Warm as _};
use super::stages::{StageEntryRef, StageParts};
use super::Index;
use crate::dims::Unit;
use crate::snapshot::{invalid, BlockReader, BlockWriter, ContentSource, Snap, HEADER};

/// The file's name in the data directory.
pub(crate) const FILE: &str = "index.image";
const MAGIC: &[u8; 8] = b"kpidindx";
const VERSION: u32 = 1;

/// An index over rows as the image holds it: most are their fields ([`imaged_as_written`]);
/// one holding what it derived through its context's lookups keeps it only when it was
/// derived through those.
pub(crate) trait Imaged: KindIndex {
    fn put_image(&self, context: &Self::Context, w: &mut impl Write) -> io::Result<()>;
    fn get_image(context: &Self::Context, r: &mut impl ContentSource) -> io::Result<Self>;
}

/// [`Imaged`] for indexes whose image is their fields ([`crate::snapshot::Snap`]).
macro_rules! imaged_as_written {
    ($($t:ty),*) => {$(
        impl $crate::index::image::Imaged for $t {
            fn put_image(
                &self,
                _: &<Self as $crate::index::part::KindIndex>::Context,
                w: &mut impl std::io::Write,
            ) -> std::io::Result<()> {
                $crate::snapshot::Snap::put(self, w)
            }
            fn get_image(
                _: &<Self as $crate::index::part::KindIndex>::Context,
                r: &mut impl $crate::snapshot::ContentSource,
            ) -> std::io::Result<Self> {
                $crate::snapshot::Snap::get(r)
            }
        }
    )*};
}
pub(crate) use imaged_as_written;

/// [`Imaged`] for an index read through `Arc<Lookups>` whose field `$by` holds sales by
/// their customer's acquisition (`ByCustomers`): its other fields as written, then `$by`
/// when it was derived through the part's own lookups.
macro_rules! imaged_with_sales_by_acquisition {
    ($t:ty, $by:ident) => {
        impl $crate::index::image::Imaged for $t {
            fn put_image(
                &self,
                lookups: &std::sync::Arc<$crate::index::lookups::Lookups>,
                w: &mut impl std::io::Write,
            ) -> std::io::Result<()> {
                use $crate::snapshot::Snap as _;
                self.put(w)?;
                self.$by.built_through(lookups).put(w)
            }
            fn get_image(
                lookups: &std::sync::Arc<$crate::index::lookups::Lookups>,
                r: &mut impl $crate::snapshot::ContentSource,
            ) -> std::io::Result<Self> {
                use $crate::snapshot::Snap;
                let index = Self::get(r)?;
                if let Some(built) = Snap::get(r)? {
                    index.$by.set_through(lookups, built);
                }
                Ok(index)
            }
        }
    };
}
pub(crate) use imaged_with_sales_by_acquisition;

/// What identifies this build: the length and CRC-32 of the running executable (an
/// image is read only by the build that wrote it); `None` when it cannot be read.
fn build_fingerprint() -> Option<u64> {
    static FINGERPRINT: OnceLock<Option<u64>> = OnceLock::new();
    *FINGERPRINT.get_or_init(|| {
        let bytes = std::fs::read(std::env::current_exe().ok()?).ok()?;
        Some((bytes.len() as u64) << 32 | u64::from(crc32fast::hash(&bytes)))
    })
}

/// The layout constants an image's lists are cut by.
fn strides() -> [u32; 3] {
    [
        super::times::TIME_STRIDE as u32,
        super::sums::SUM_STRIDE as u32,
        super::blocked::BLOCK as u32,
    ]
}

/// Writes the image of `tenants`' indexes, over the rows of the snapshot `token` names,
/// to `dir` (a temporary name, synced, then renamed).
pub(crate) fn write(dir: &Path, token: u64, tenants: &[(&str, &Index)]) -> io::Result<()> {
    let Some(build) = build_fingerprint() else {
        return Err(io::Error::other(
            "the executable cannot be read to fingerprint it",
        ));
    };
    write_as(dir, token, tenants, build)
}

/// [`write`], as the build `build` fingerprints.
fn write_as(dir: &Path, token: u64, tenants: &[(&str, &Index)], build: u64) -> io::Result<()> {
    crate::snapshot::replace_durably(dir, FILE, |tmp| {
        let file = File::create(tmp)?;
        let mut w = BlockWriter::new(&file, &header(token))?;
        build.put(&mut w)?;
        strides().iter().try_for_each(|s| s.put(&mut w))?;
        (tenants.len() as u32).put(&mut w)?;
        for (name, index) in tenants {
            Box::<str>::from(*name).put(&mut w)?;
            index.put_image(&mut w)?;
        }
        w.finish()?;
        file.sync_all()
    })
}

fn header(token: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&token.to_le_bytes());
    header
}

/// Whether the image in `dir` is one this build reads over the rows snapshot `token`.
pub(crate) fn is_current(dir: &Path, token: u64) -> bool {
    matches!(ImageReader::open(dir, token), Ok(Some(_)))
}

/// The token of the rows snapshot the image in `dir` was built over (`None`: no image, or
/// not of this format).
#[cfg(test)]
pub(crate) fn token_of(dir: &Path) -> Option<u64> {
    let mut bytes = [0u8; HEADER];
    let mut file = File::open(dir.join(FILE)).ok()?;
    io::Read::read_exact(&mut file, &mut bytes).ok()?;
    let (magic, rest) = bytes.split_at(8);
    let (version, token) = rest.split_at(4);
    (magic == MAGIC && version == VERSION.to_le_bytes())
        .then(|| u64::from_le_bytes(token.try_into().expect("8 bytes")))
}

/// An image being read, tenant by tenant.
pub(crate) struct ImageReader {
    r: BlockReader,
    tenants_left: u32,
}

impl ImageReader {
    /// Opens the image in `dir` if it was built over the rows snapshot `token` by this
    /// build: `Ok(None)` when there is none, an error saying why it is not read.
    pub(crate) fn open(dir: &Path, token: u64) -> io::Result<Option<Self>> {
        let file = match File::open(dir.join(FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let (head, mut r) = BlockReader::start(Box::new(file), len)?;
        if head[..] != header(token)[..] {
            return Err(invalid(
                "an image of other rows, or of another format version",
            ));
        }
        if Some(u64::get(&mut r)?) != build_fingerprint() {
            return Err(invalid("an image written by another build of kpid"));
        }
        for stride in strides() {
            if u32::get(&mut r)? != stride {
                return Err(invalid("an image of another index layout"));
            }
        }
        let tenants_left = u32::get(&mut r)?;
        Ok(Some(Self { r, tenants_left }))
    }

    /// The name of the next tenant whose index the image holds.
    pub(crate) fn next_tenant(&mut self) -> io::Result<Option<String>> {
        if self.tenants_left == 0 {
            self.r.finish()?;
            return Ok(None);
        }
        self.tenants_left -= 1;
        Box::<str>::get(&mut self.r).map(|name| Some(name.into()))
    }

    /// Fills `index` (built over the rows the image was, nothing else built yet, or some
    /// parts built by reads meanwhile) with what the image holds of the tenant just named.
    pub(crate) fn restore(&mut self, index: &Index) -> io::Result<()> {
        index.restore_image(&mut self.r)?;
        index.partitions_from_image.store(
            index.partitions_built(),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }
}

impl Index {
    /// How many partitions of built-in dimensions its parts' bases have built.
    fn partitions_built(&self) -> usize {
        macro_rules! each {
            ($(($module:ident, $unit:ident)),*) => {
                0 $(+ self.$module.base_partitions())*
            };
        }
        let stages = self.stages.get().map_or(0, |stages| {
            stages.exits.base_partitions() + stages.stays.base_partitions()
        });
        with_parts!(each) + stages
    }

    /// Whether it built partitions beyond those it read from the index image (or read
    /// none): an image written now would hold more.
    pub(crate) fn built_beyond_image(&self) -> bool {
        let read = self
            .partitions_from_image
            .load(std::sync::atomic::Ordering::Relaxed);
        read == 0 || self.partitions_built() > read
    }

    /// Brings every part over every current row ([`super::delta::LayeredPart::settled`]),
    /// building what [`Index::put_image`] would, two parts at a time (at a stop nothing
    /// else runs); the deals and their stage parts, the largest, first.
    pub(crate) fn settle(&self) {
        type Settle<'a> = Box<dyn Fn() + Send + Sync + 'a>;
        macro_rules! each {
            ($(($module:ident, $unit:ident)),*) => {
                vec![$(Box::new(|| self.$module.settled().warm()) as Settle<'_>),*]
            };
        }
        let mut work = with_parts!(each);
        if let Some(stages) = self.stages.get() {
            let exits: Settle<'_> = Box::new(|| stages.exits.settled().warm());
            let stays: Settle<'_> = Box::new(|| stages.stays.settled().warm());
            work.splice(1..1, [exits, stays]);
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let run = || {
            while let Some(settle) =
                work.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            {
                settle();
            }
        };
        std::thread::scope(|scope| {
            scope.spawn(run);
            run();
        });
    }

    /// Writes what every part built, each part first brought over every current row
    /// ([`super::delta::LayeredPart::settled`]: a part with a delta is built anew, with
    /// the partitions its base had).
    fn put_image(&self, w: &mut impl Write) -> io::Result<()> {
        macro_rules! put {
            ($(($module:ident, $unit:ident)),*) => {
                $(self.$module.settled().put_image(w)?;)*
            };
        }
        with_parts!(put);
        match self.stages.get() {
            None => false.put(w),
            Some(stages) => {
                true.put(w)?;
                let (exits, stays) = (stages.exits.settled(), stages.stays.settled());
                exits.rows.put(w)?;
                exits.put_image(w)?;
                // Both read one list of entries, unless one was listed anew alone.
                let shared = Arc::ptr_eq(&exits.rows, &stays.rows);
                shared.put(w)?;
                if !shared {
                    stays.rows.put(w)?;
                }
                stays.put_image(w)
            }
        }
    }

    /// Reads what [`Index::put_image`] wrote into this index's parts (each over every row,
    /// as a first build makes them).
    fn restore_image(&self, r: &mut impl ContentSource) -> io::Result<()> {
        macro_rules! restore {
            ($(($module:ident, $unit:ident)),*) => {
                $(self.$module.restore_image(r)?;)*
            };
        }
        with_parts!(restore);
        if !bool::get(r)? {
            return Ok(());
        }
        // Read as the stage parts' initializer: a read of them meanwhile waits.
        super::image::fill_from_image(
            &self.stages,
            || self.read_stage_parts(r).map(Arc::new),
            || Arc::new(StageParts::list(&self.stage_context)),
        )
    }
}

impl Index {
    /// The stage parts as [`Index::put_image`] wrote them: their entries (each checked
    /// against its deal's history) and what each part built.
    fn read_stage_parts(&self, r: &mut impl ContentSource) -> io::Result<StageParts> {
        let deals = &self.stage_context.deals;
        let entries = |r: &mut _| -> io::Result<Arc<Vec<StageEntryRef>>> {
            let entries: Vec<StageEntryRef> = Snap::get(r)?;
            let live = |e: &StageEntryRef| {
                deals
                    .get(e.deal)
                    .is_some_and(|d| (e.position as usize) < d.stages.len())
            };
            if !entries.iter().all(live) {
                return Err(invalid("a stage entry of no deal's history"));
            }
            Ok(Arc::new(entries))
        };
        let exit_entries = entries(r)?;
        let exits = StageParts::part(&self.stage_context, Unit::StageExit, &exit_entries);
        exits.restore_image(r)?;
        let stay_entries = if bool::get(r)? {
            exit_entries
        } else {
            entries(r)?
        };
        let stays = StageParts::part(&self.stage_context, Unit::StageStay, &stay_entries);
        stays.restore_image(r)?;
        Ok(StageParts {
            exits: LayeredPart::built(exits),
            stays: LayeredPart::built(stays),
        })
    }
}

impl<I: Imaged> Part<I> {
    /// Writes its index over every row (built now if it was not, with what it builds on
    /// first use) and the partitions and value lists built so far.
    pub(crate) fn put_image(&self, w: &mut impl Write) -> io::Result<()> {
        self.warm();
        self.len().put(w)?;
        self.all().put_image(&self.context, w)?;
        let partitions = self.built_partitions();
        (partitions.len() as u32).put(w)?;
        for (d, partition) in partitions {
            (d as u32).put(w)?;
            (partition.len() as u32).put(w)?;
            for (value, (positions, index)) in partition.iter() {
                value.put(w)?;
                positions.put(w)?;
                index.put_image(&self.context, w)?;
            }
        }
        let values = self.listed_values();
        (values.len() as u32).put(w)?;
        for (d, values) in values {
            (d as u32).put(w)?;
            values.put(w)?;
        }
        match self.built_cohorts() {
            None => false.put(w),
            Some(cohorts) => {
                true.put(w)?;
                cohorts.put_image(&self.context, w)
            }
        }
    }

    /// Reads what [`Part::put_image`] wrote into this part (over the same rows); what a
    /// read built meanwhile is kept, and a read meanwhile waits for what is being read.
    pub(crate) fn restore_image(&self, r: &mut impl ContentSource) -> io::Result<()> {
        let rows = usize::get(r)?;
        if rows != self.len() {
            return Err(invalid(format!(
                "a part of {rows} rows in the image, {} here",
                self.len()
            )));
        }
        self.restore_all(|| I::get_image(&self.context, r))?;
        for _ in 0..crate::snapshot::get_count(r, "partitions")? {
            let d = dimension(r)?;
            self.restore_partition(d, || {
                let n = crate::snapshot::get_count(r, "partition values")?;
                let mut partition = std::collections::HashMap::with_capacity(n as usize);
                for _ in 0..n {
                    let value = u32::get(r)?;
                    let positions: Vec<u32> = Snap::get(r)?;
                    if !self.holds_ascending(&positions) {
                        return Err(invalid("a partition's rows are not the part's"));
                    }
                    let index = I::get_image(&self.context, r)?;
                    if partition.insert(value, (positions, index)).is_some() {
                        return Err(invalid("a partition's value twice"));
                    }
                }
                Ok(partition)
            })?;
        }
        for _ in 0..crate::snapshot::get_count(r, "value lists")? {
            let d = dimension(r)?;
            self.restore_values(d, Snap::get(r)?);
        }
        if bool::get(r)? {
            self.restore_cohorts(|| {
                CohortPartitions::get_image(&self.context, |p| self.holds_each(p), r)
            })?;
        }
        self.restored();
        Ok(())
    }
}

/// Fills `cell` with what `read` reads from the index image, running it as the cell's
/// initializer so that readers wait for it rather than build the same. When the cell is
/// set already (a read built it first), `read` still runs, to pass its bytes, and its
/// value is dropped. When `read` fails, `build` fills the cell (readers are waiting) and
/// the error is returned.
pub(crate) fn fill_from_image<T>(
    cell: &OnceLock<T>,
    read: impl FnOnce() -> io::Result<T>,
    build: impl FnOnce() -> T,
) -> io::Result<()> {
    let mut read = Some(read);
    let mut failed = None;
    cell.get_or_init(|| {
        let read = read.take().expect("read once");
        read().unwrap_or_else(|e| {
            failed = Some(e);
            build()
        })
    });
    match (read, failed) {
        (Some(read), _) => read().map(drop),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}

/// A built-in dimension's position in `Dimension::ALL`, as the image holds it.
fn dimension(r: &mut impl ContentSource) -> io::Result<usize> {
    let d = u32::get(r)? as usize;
    if d >= crate::dims::NDIMS {
        return Err(invalid(format!("no dimension {d}")));
    }
    Ok(d)
}

#[cfg(test)]
impl Index {
    /// What each part (in `with_parts!` order, then the stage exits and stays, once
    /// listed) has built: its index over every row, and how many partitions.
    pub(crate) fn built_parts(&self) -> Vec<(bool, usize)> {
        macro_rules! each {
            ($(($module:ident, $unit:ident)),*) => {
                vec![$(self.$module.base_built()),*]
            };
        }
        let mut built = with_parts!(each);
        if let Some(stages) = self.stages.get() {
            built.push(stages.exits.base_built());
            built.push(stages.stays.base_built());
        }
        built
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::{compare_with_reference, copies_written, grid, grid_scopes};
    use crate::record::RecordKind;
    use crate::rows::Rows;

    fn built(index: &Index) -> Vec<(bool, usize)> {
        index.built_parts()
    }

    /// `index`'s image written over rows `token` 7, read into a first index of `rows`.
    fn read_back(
        dir: &Path,
        index: &Index,
        rows: &Rows,
        kinds: &super::super::KindGenerations,
    ) -> Index {
        write(dir, 7, &[("t", index)]).unwrap();
        let first = Index::build(rows, kinds, None);
        let mut reader = ImageReader::open(dir, 7).unwrap().expect("an image");
        assert_eq!(reader.next_tenant().unwrap().as_deref(), Some("t"));
        reader.restore(&first).unwrap();
        assert_eq!(reader.next_tenant().unwrap(), None);
        first
    }

    /// An index read back from its image holds, before any read, every part's index and
    /// the partitions the written one had built, and answers every measure and grouping
    /// as the reference does; so does one written after writes, whose parts with a delta
    /// are written built anew over every current row.
    #[test]
    fn an_index_read_back_from_its_image_answers_as_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let scopes = grid_scopes(&grid());
        for seed in 0..2u64 {
            let mut written = copies_written(seed);
            let index = Index::build(&written.rows, &written.kinds, None);
            // Reading builds partitions (and the stage parts, through a stage filter).
            compare_with_reference(&index, &written.model, &scopes);
            let back = read_back(dir.path(), &index, &written.rows, &written.kinds);
            let expected: Vec<(bool, usize)> =
                built(&index).iter().map(|(_, p)| (true, *p)).collect();
            assert_eq!(built(&back), expected, "seed {seed}");
            assert!(expected.iter().any(|(_, p)| *p > 0) && expected.len() == PARTS_AND_STAGES);
            compare_with_reference(&back, &written.model, &scopes);

            // Some deals and customers deleted: their parts hold a delta.
            for kind in [RecordKind::Deal, RecordKind::Customer] {
                let ids: Vec<String> = written
                    .model
                    .of_kind(kind)
                    .take(3)
                    .map(|r| r.id().to_owned())
                    .collect();
                for id in ids {
                    written.delete(kind, &id);
                }
            }
            let next = Index::build(&written.rows, &written.kinds, Some(&index));
            compare_with_reference(&next, &written.model, &scopes);
            assert!(next.deals.has_delta());
            let back = read_back(dir.path(), &next, &written.rows, &written.kinds);
            assert!(built(&back).iter().all(|(all, _)| *all), "seed {seed}");
            compare_with_reference(&back, &written.model, &scopes);
        }
    }

    /// The parts `built` lists when the stage parts were listed.
    const PARTS_AND_STAGES: usize = super::super::PARTS.len();

    /// An image is read only over the rows it was written for: another token, another
    /// tenant's rows or a damaged byte are refused, never read into an index.
    #[test]
    fn an_image_is_read_only_over_its_own_rows() {
        let dir = tempfile::tempdir().unwrap();
        let written = copies_written(3);
        let index = Index::build(&written.rows, &written.kinds, None);
        compare_with_reference(&index, &written.model, &grid_scopes(&grid()));
        write(dir.path(), 7, &[("t", &index)]).unwrap();
        assert_eq!(token_of(dir.path()), Some(7));
        assert!(
            ImageReader::open(dir.path(), 8).is_err(),
            "another snapshot's rows"
        );

        // Another build's: refused before anything is read.
        let build = build_fingerprint().unwrap();
        write_as(dir.path(), 7, &[("t", &index)], build ^ 1).unwrap();
        let refused = ImageReader::open(dir.path(), 7).err().expect("refused");
        assert!(refused.to_string().contains("another build"), "{refused}");
        assert!(!is_current(dir.path(), 7));
        write(dir.path(), 7, &[("t", &index)]).unwrap();
        assert!(is_current(dir.path(), 7));

        // Other rows: a part's row count differs.
        let other = copies_written(4);
        let first = Index::build(&other.rows, &other.kinds, None);
        let mut reader = ImageReader::open(dir.path(), 7).unwrap().unwrap();
        reader.next_tenant().unwrap();
        assert!(reader.restore(&first).is_err());

        // Damaged: every 997th byte flipped in turn (its block's CRC fails).
        let path = dir.path().join(FILE);
        let bytes = std::fs::read(&path).unwrap();
        for at in (HEADER..bytes.len()).step_by(997) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            std::fs::write(&path, &damaged).unwrap();
            let read = ImageReader::open(dir.path(), 7).and_then(|r| {
                let mut r = r.expect("an image");
                let first = Index::build(&written.rows, &written.kinds, None);
                while r.next_tenant()?.is_some() {
                    r.restore(&first)?;
                }
                Ok(())
            });
            assert!(read.is_err(), "byte {at} flipped");
        }
    }
}
