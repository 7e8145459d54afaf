//! The snapshot's framing: content cut into blocks of at most [`BLOCK`] bytes, each
//! followed by the CRC-32 of every byte of the file before it, and an empty block at the
//! end (see [the snapshot's format](super)). The reader checks a block's CRC before any of
//! its bytes is handed on.

use std::io::{self, Read, Write};

use super::{invalid, BLOCK, HEADER};

/// Cuts what is written into checksummed blocks.
pub(crate) struct BlockWriter<W: Write> {
    out: W,
    /// The block being filled: room for its length, then its content.
    block: Vec<u8>,
    /// The CRC of every byte written so far.
    crc: crc32fast::Hasher,
}

impl<W: Write> BlockWriter<W> {
    pub(crate) fn new(mut out: W, header: &[u8]) -> io::Result<Self> {
        out.write_all(header)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(header);
        let mut block = Vec::with_capacity(4 + BLOCK + 4);
        block.extend_from_slice(&[0; 4]);
        Ok(Self { out, block, crc })
    }

    /// Writes the block filled so far (an empty one ends the file).
    fn emit(&mut self) -> io::Result<()> {
        let len = u32::try_from(self.block.len() - 4).expect("a block holds at most BLOCK bytes");
        self.block[..4].copy_from_slice(&len.to_le_bytes());
        self.crc.update(&self.block);
        let crc = self.crc.clone().finalize().to_le_bytes();
        self.crc.update(&crc);
        self.block.extend_from_slice(&crc);
        self.out.write_all(&self.block)?;
        self.block.truncate(4);
        Ok(())
    }

    /// Writes the last block and the end; hands back the output.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.block.len() > 4 {
            self.emit()?;
        }
        self.emit()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for BlockWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(4 + BLOCK - self.block.len());
        self.block.extend_from_slice(&data[..n]);
        if self.block.len() == 4 + BLOCK {
            self.emit()?;
        }
        Ok(n)
    }

    /// Blocks are written when full and by [`BlockWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the content of checksummed blocks, checking each block's CRC before handing out
/// any of its bytes.
pub(crate) struct BlockReader {
    file: Box<dyn Read>,
    /// The CRC of every byte read so far.
    crc: crc32fast::Hasher,
    /// The current block as read: length, content, crc.
    block: Vec<u8>,
    /// The next content byte of `block` to hand out, and the end of its content.
    pos: usize,
    end: usize,
    /// Bytes of the file not read yet.
    unread: u64,
    /// Where the next block starts in the file.
    next_at: u64,
    /// Whether the end was read.
    ended: bool,
    /// Content bytes handed out so far.
    position: u64,
}

impl BlockReader {
    /// Reads the header of a file of `len` bytes.
    pub(crate) fn start(mut file: Box<dyn Read>, len: u64) -> io::Result<([u8; HEADER], Self)> {
        if len < HEADER as u64 {
            return Err(invalid(format!(
                "truncated: {len} bytes, shorter than a header"
            )));
        }
        let mut header = [0; HEADER];
        file.read_exact(&mut header)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        let reader = Self {
            file,
            crc,
            block: Vec::with_capacity(4 + BLOCK + 4),
            pos: 0,
            end: 0,
            unread: len - HEADER as u64,
            next_at: HEADER as u64,
            ended: false,
            position: 0,
        };
        Ok((header, reader))
    }

    /// Reads and checks the next block; false at the end.
    pub(super) fn next_block(&mut self) -> io::Result<bool> {
        if self.ended {
            return Ok(false);
        }
        let at = self.next_at;
        if self.unread < 8 {
            return Err(invalid(format!(
                "truncated: the file ends at byte {}, inside the block at byte {at}",
                at + self.unread
            )));
        }
        let mut len = [0; 4];
        self.file.read_exact(&mut len)?;
        let n = u32::from_le_bytes(len) as usize;
        if n > BLOCK {
            return Err(invalid(format!(
                "the block at byte {at} claims {n} bytes; blocks hold at most {BLOCK}"
            )));
        }
        if n as u64 + 8 > self.unread {
            return Err(invalid(format!(
                "truncated: the block at byte {at} holds {n} bytes, but the file ends at byte {}",
                at + self.unread
            )));
        }
        self.block.clear();
        self.block.extend_from_slice(&len);
        self.block.resize(4 + n + 4, 0);
        self.file.read_exact(&mut self.block[4..])?;
        self.unread -= n as u64 + 8;
        self.next_at += n as u64 + 8;
        self.crc.update(&self.block[..4 + n]);
        let stored = &self.block[4 + n..];
        if stored != self.crc.clone().finalize().to_le_bytes() {
            return Err(invalid(format!(
                "checksum mismatch in the block at byte {at}"
            )));
        }
        self.crc.update(stored);
        self.pos = 4;
        self.end = 4 + n;
        self.ended = n == 0;
        Ok(!self.ended)
    }

    /// How many content bytes were read.
    pub(super) fn position(&self) -> u64 {
        self.position
    }

    /// At most how many content bytes follow.
    pub(super) fn remaining(&self) -> u64 {
        (self.end - self.pos) as u64 + self.unread
    }

    /// Checks that the content was read to its end and the file ends there.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if self.pos < self.end || self.next_block()? {
            return Err(invalid(format!(
                "content after the last tenant, in the block before byte {}",
                self.next_at
            )));
        }
        if self.unread > 0 {
            return Err(invalid(format!(
                "{} bytes after the end, at byte {}",
                self.unread, self.next_at
            )));
        }
        Ok(())
    }

    #[cold]
    fn read_exact_across(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read(buf)? {
                0 => {
                    return Err(invalid(format!(
                        "the content ends inside a value, before byte {}",
                        self.next_at
                    )))
                }
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }
}

impl Read for BlockReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end && !self.next_block()? {
            return Ok(0);
        }
        let n = buf.len().min(self.end - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        self.position += n as u64;
        Ok(n)
    }

    #[inline]
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if self.end - self.pos >= buf.len() {
            buf.copy_from_slice(&self.block[self.pos..self.pos + buf.len()]);
            self.pos += buf.len();
            self.position += buf.len() as u64;
            return Ok(());
        }
        self.read_exact_across(buf)
    }
}
