//! Mends, as the bytes pass, what mzdata's mzML writer (0.68, the newest release) writes
//! against the mzML 1.1 schema, and ends the document with an index and checksum of the mended
//! bytes in place of the writer's own.
//!
//! Whatever its input, mzdata's writer
//! - names every run `1` (`<run id="1">`: an `xs:ID` cannot start with a digit) and leaves the
//!   run's start time out;
//! - writes an empty `<precursorList count="0">` in every spectrum without precursor, an empty
//!   `<selectedIonList count="0">` in a precursor without selected ion and an empty
//!   `<componentList count="0">` in an instrument configuration without components, where the
//!   schema allows each list to be absent, not empty;
//! - writes `<softwareRef ref=""/>` in an instrument configuration that names no software;
//! - states an "ion injection time" of 0 ms for every scan and a "collision energy" of 0 eV
//!   for every precursor whose input gives none (its model holds no difference between none
//!   and 0; an injection of 0 ms gathers no ions and a collision of 0 eV breaks none, so a 0
//!   is read as none and left out);
//! - states a "scan start time" for every scan; where the input gives none, mzforge's reader
//!   sets it to NaN (see `io::meta_of`), and that line is left out rather than invent a time;
//! - writes a precursor's collision energy after the activation's other parameters, so a
//!   userParam there comes before a cvParam, where the schema wants every cvParam of an
//!   element before its userParams (and any `referenceableParamGroupRef` before both);
//! - points each offset of its index at the line break before the element, not at the element;
//! - lists the parameters of the `referenceableParamGroup` it gathers from the instrument
//!   configurations in an order that changes from run to run (a hash map's): they are put in
//!   the order of their accessions, so the same input gives the same bytes.
//!
//! A precursor or scan may name, as `spectrumRef`, a spectrum the document does not hold: one
//! left out by `--ms-levels`, or cut off with the part of the run the input was taken from.
//! The schema wants every `spectrumRef` to name a spectrum of the document (written before:
//! a precursor scan comes before its product); a reference to any other becomes an
//! `externalSpectrumID` in the run's source file, which mzML has for that.
//!
//! The writer's output is regular: one tag per line, indented with spaces, attribute values
//! escaped, so a `<` that begins a line always opens a tag. The mending looks at whole lines
//! and leaves every other line as it is; what it leaves out it leaves out whole (an empty list
//! together with its closing tag).

use std::collections::HashSet;
use std::io::{self, Write};

use sha1::{Digest, Sha1};

use crate::digest::lower_hex;

/// The opening tag of a list the writer may leave empty, and its closing tag.
const EMPTY_LISTS: [(&[u8], &[u8]); 3] = [
    (b"<precursorList count=\"0\">", b"</precursorList>"),
    (b"<selectedIonList count=\"0\">", b"</selectedIonList>"),
    (b"<componentList count=\"0\">", b"</componentList>"),
];
const NO_SOFTWARE: &[u8] = b"<softwareRef ref=\"\"/>";
/// The parameters mzdata's writer states as 0 when the input gives none: ion injection time,
/// collision energy.
const ZERO_WHEN_NONE: [&[u8]; 2] = [
    b"<cvParam accession=\"MS:1000927\"",
    b"<cvParam accession=\"MS:1000045\"",
];
const ZERO_VALUE: &[u8] = b" value=\"0\"";
/// A scan start time the input does not give (NaN, see the module's documentation).
const START_TIME: &[u8] = b"<cvParam accession=\"MS:1000016\"";
const NAN_VALUE: &[u8] = b" value=\"NaN\"";
const RUN_NAMED_1: &[u8] = b"<run id=\"1\"";
const SPECTRUM: &[u8] = b"<spectrum ";
const COUNT: &[u8] = b"<spectrumList count=\"";
const CHROMATOGRAM: &[u8] = b"<chromatogram ";
const INDEX_LIST: &[u8] = b"<indexList";
const PARAM_GROUP: &[u8] = b"<referenceableParamGroup ";
const PARAM_GROUP_END: &[u8] = b"</referenceableParamGroup>";
/// The elements that may refer to a spectrum, with the reference as their first attribute.
const SPECTRUM_REFERENCES: [&[u8]; 2] = [b"<precursor spectrumRef=\"", b"<scan spectrumRef=\""];
/// The three kinds of parameter line, in the order the schema wants them within an element.
const PARAMETERS: [&[u8]; 3] = [
    b"<referenceableParamGroupRef ",
    b"<cvParam ",
    b"<userParam ",
];

/// A writer for mzdata's mzML writer to write into: it passes the document on, mended, to
/// `inner`, and drops mzdata's index; [`MendingWriter::finish`] writes the index of what
/// was passed on.
///
/// After a failed write, later writes are accepted and dropped (the failure is returned once,
/// and again by `finish`): mzdata's writer closes its document when dropped and panics if
/// that fails, which it would after a full disk.
#[derive(Debug)]
pub(super) struct MendingWriter<W: Write> {
    inner: W,
    /// What replaces `<run id="1"`: the run's own id and its start time.
    run_start: Vec<u8>,
    /// The run's source file: what a reference to a spectrum outside the document names.
    source_file: Option<String>,
    /// The id (escaped, as written) of every spectrum passed on.
    spectrum_ids: HashSet<Vec<u8>>,
    /// The line being received, when it arrived in more than one write.
    line: Vec<u8>,
    /// The opening line of a list that may be empty (its index in [`EMPTY_LISTS`]), held
    /// until the next line shows whether the list closes at once.
    held: Option<(usize, Vec<u8>)>,
    /// Consecutive parameter lines (siblings), held to be passed on in the schema's order:
    /// their bytes, and each line's kind (index in [`PARAMETERS`]) and end in `parameters`.
    parameters: Vec<u8>,
    parameter_lines: Vec<(usize, usize)>,
    /// The lines are those of a `referenceableParamGroup`.
    in_param_group: bool,
    /// Bytes passed on so far.
    position: u64,
    checksum: Sha1,
    /// Each spectrum's and chromatogram's id (as written, escaped) and where its element
    /// starts.
    spectra: Vec<(Vec<u8>, u64)>,
    chromatograms: Vec<(Vec<u8>, u64)>,
    /// The spectrum count to state instead of the one written, if any.
    spectrum_count: Option<u64>,
    /// mzdata's index list has begun: nothing more is passed on.
    at_index: bool,
    failed: bool,
}

impl<W: Write> MendingWriter<W> {
    /// Passes a document on to `inner`.
    pub(super) fn new(inner: W) -> Self {
        MendingWriter {
            inner,
            run_start: b"<run id=\"run\"".to_vec(),
            source_file: None,
            spectrum_ids: HashSet::new(),
            line: Vec::new(),
            held: None,
            parameters: Vec::new(),
            parameter_lines: Vec::new(),
            in_param_group: false,
            position: 0,
            checksum: Sha1::new(),
            spectra: Vec::new(),
            chromatograms: Vec::new(),
            spectrum_count: None,
            at_index: false,
            failed: false,
        }
    }

    /// States `count` as the document's spectrum count, whatever the document says.
    pub(super) fn count_spectra_as(&mut self, count: u64) {
        self.spectrum_count = Some(count);
    }

    /// Names the run `run_id` (an `xs:ID`, see [`as_xml_id`]) with `start_time` (an
    /// `xs:dateTime`) if known; `source_file` is the id of the run's source file.
    pub(super) fn describe_run(
        &mut self,
        run_id: &str,
        start_time: Option<&str>,
        source_file: Option<&str>,
    ) {
        let mut run_start = format!("<run id=\"{}\"", escape_attribute(run_id));
        if let Some(time) = start_time {
            run_start.push_str(&format!(" startTimeStamp=\"{}\"", escape_attribute(time)));
        }
        self.run_start = run_start.into_bytes();
        self.source_file = source_file.map(escape_attribute);
    }

    /// Ends the document once mzdata's writer has closed it: the index of the spectra and
    /// chromatograms passed on, its offset, and the SHA-1 of the document up to the checksum.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write to the file failed"));
        }
        if !self.at_index {
            return Err(io::Error::other(
                "the mzML writer closed its document without an index",
            ));
        }
        let index_offset = self.position + 2;
        let mut tail = b"  <indexList count=\"2\">\n".to_vec();
        for (name, entries) in [
            ("spectrum", &self.spectra),
            ("chromatogram", &self.chromatograms),
        ] {
            tail.extend_from_slice(format!("    <index name=\"{name}\">\n").as_bytes());
            for (id, offset) in entries {
                tail.extend_from_slice(b"      <offset idRef=\"");
                tail.extend_from_slice(id);
                tail.extend_from_slice(format!("\">{offset}</offset>\n").as_bytes());
            }
            tail.extend_from_slice(b"    </index>\n");
        }
        tail.extend_from_slice(b"  </indexList>\n");
        tail.extend_from_slice(
            format!("  <indexListOffset>{index_offset}</indexListOffset>\n").as_bytes(),
        );
        tail.extend_from_slice(b"  <fileChecksum>");
        self.pass_on(&tail)?;
        let checksum = lower_hex(&std::mem::take(&mut self.checksum).finalize());
        let end = format!("{checksum}</fileChecksum>\n</indexedmzML>\n");
        self.inner.write_all(end.as_bytes())?;
        self.inner.flush()
    }

    fn take(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() && !self.at_index {
            let Some(at) = memchr::memchr(b'\n', bytes) else {
                self.line.extend_from_slice(bytes);
                return Ok(());
            };
            let (line, rest) = bytes.split_at(at + 1);
            bytes = rest;
            if self.line.is_empty() {
                self.end_line(line)?;
            } else {
                let mut whole = std::mem::take(&mut self.line);
                whole.extend_from_slice(line);
                self.end_line(&whole)?;
                whole.clear();
                self.line = whole;
            }
        }
        Ok(())
    }

    /// One whole line, its line break included.
    fn end_line(&mut self, line: &[u8]) -> io::Result<()> {
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let tag = line[indent..]
            .strip_suffix(b"\n")
            .unwrap_or(&line[indent..]);
        if let Some((list, opening)) = self.held.take() {
            if tag == EMPTY_LISTS[list].1 {
                return Ok(());
            }
            self.pass_on(&opening)?;
        }
        if ZERO_WHEN_NONE.iter().any(|p| tag.starts_with(p))
            && memchr::memmem::find(tag, ZERO_VALUE).is_some()
        {
            return Ok(());
        }
        if tag.starts_with(START_TIME) && memchr::memmem::find(tag, NAN_VALUE).is_some() {
            return Ok(());
        }
        if let Some(kind) = PARAMETERS.iter().position(|p| tag.starts_with(p)) {
            self.parameters.extend_from_slice(line);
            self.parameter_lines.push((kind, self.parameters.len()));
            return Ok(());
        }
        self.pass_on_parameters()?;
        if tag.starts_with(PARAM_GROUP) || tag == PARAM_GROUP_END {
            self.in_param_group = tag != PARAM_GROUP_END;
        }
        if tag.starts_with(INDEX_LIST) {
            self.at_index = true;
            return Ok(());
        }
        if let Some(list) = EMPTY_LISTS.iter().position(|(opening, _)| tag == *opening) {
            self.held = Some((list, line.to_vec()));
            return Ok(());
        }
        if tag == NO_SOFTWARE {
            return Ok(());
        }
        let start = self.position + indent as u64;
        if tag.starts_with(SPECTRUM) {
            let id = id_of(tag).to_vec();
            self.spectra.push((id.clone(), start));
            self.spectrum_ids.insert(id);
        } else if let Some(reference) = SPECTRUM_REFERENCES.iter().find(|r| tag.starts_with(r)) {
            let value = &tag[reference.len()..];
            let value = &value[..memchr::memchr(b'"', value).unwrap_or(value.len())];
            if !self.spectrum_ids.contains(value) {
                let name = &reference[..reference.len() - " spectrumRef=\"".len()];
                let rest = &tag[reference.len() + value.len() + 1..];
                let external = match &self.source_file {
                    Some(file) => [
                        b" sourceFileRef=\"".as_slice(),
                        file.as_bytes(),
                        b"\" externalSpectrumID=\"",
                        value,
                        b"\"",
                    ]
                    .concat(),
                    None => Vec::new(),
                };
                return self.pass_on(&rebuilt(&line[..indent], &[name, &external, rest]));
            }
        } else if tag.starts_with(CHROMATOGRAM) {
            self.chromatograms.push((id_of(tag).to_vec(), start));
        } else if let (Some(count), Some(rest)) = (self.spectrum_count, tag.strip_prefix(COUNT)) {
            let rest = &rest[memchr::memchr(b'"', rest).unwrap_or(rest.len())..];
            let count = count.to_string();
            return self.pass_on(&rebuilt(&line[..indent], &[COUNT, count.as_bytes(), rest]));
        } else if let Some(rest) = tag.strip_prefix(RUN_NAMED_1) {
            let run = rebuilt(&line[..indent], &[&self.run_start, rest]);
            return self.pass_on(&run);
        }
        self.pass_on(line)
    }

    /// Passes on the parameter lines held, each kind after the other, in their order within
    /// a kind (a parameter group's by their text, which begins with the accession). Should
    /// one of them not end its element on its line (a value with a line break in it), they
    /// are passed on as they came.
    fn pass_on_parameters(&mut self) -> io::Result<()> {
        let parameters = std::mem::take(&mut self.parameters);
        let mut lines: Vec<(usize, &[u8])> = Vec::with_capacity(self.parameter_lines.len());
        let mut start = 0;
        for &(kind, end) in &self.parameter_lines {
            lines.push((kind, &parameters[start..end]));
            start = end;
        }
        self.parameter_lines.clear();
        let each_whole = (lines.iter()).all(|(_, line)| line.trim_ascii_end().ends_with(b"/>"));
        if each_whole {
            if self.in_param_group {
                lines.sort();
            } else {
                lines.sort_by_key(|&(kind, _)| kind);
            }
        }
        let result = lines.iter().try_for_each(|(_, line)| self.pass_on(line));
        self.parameters = parameters;
        self.parameters.clear();
        result
    }

    fn pass_on(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.checksum.update(bytes);
        self.position += bytes.len() as u64;
        Ok(())
    }
}

impl<W: Write> Write for MendingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Ok(bytes.len());
        }
        match self.take(bytes) {
            Ok(()) => Ok(bytes.len()),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// A line made of `indent` and `parts`, with its line break.
fn rebuilt(indent: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    [indent, &parts.concat(), b"\n"].concat()
}

/// The `id` attribute's value (escaped, as written) of a start tag, empty if it has none.
fn id_of(tag: &[u8]) -> &[u8] {
    let Some(at) = memchr::memmem::find(tag, b" id=\"") else {
        return &[];
    };
    let value = &tag[at + 5..];
    &value[..memchr::memchr(b'"', value).unwrap_or(value.len())]
}

/// `name` as an `xs:ID` (an XML name without colons): characters other than letters, digits,
/// `.`, `-` and `_` become `_`, and a name that does not begin with a letter or `_` gets
/// `_` in front (`1` becomes `_1`, `run 1` `run_1`).
pub(super) fn as_xml_id(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !id.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        id.insert(0, '_');
    }
    id
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mend_in_pieces(document: &[u8], piece: usize) -> Vec<u8> {
        let mut writer = MendingWriter::new(Vec::new());
        writer.describe_run("run_1", Some("2020-01-02T03:04:05Z"), Some("RAW1"));
        for chunk in document.chunks(piece) {
            writer.write_all(chunk).unwrap();
        }
        writer.finish().unwrap();
        writer.inner
    }

    const DOCUMENT: &[u8] = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>
<indexedmzML>
  <mzML>
    <referenceableParamGroupList count=\"1\">
      <referenceableParamGroup id=\"shared\">
        <cvParam accession=\"MS:1000529\" cvRef=\"MS\" name=\"instrument serial number\" value=\"1062B\"/>
        <cvParam accession=\"MS:1000449\" cvRef=\"MS\" name=\"LTQ Orbitrap\"/>
      </referenceableParamGroup>
    </referenceableParamGroupList>
    <instrumentConfigurationList count=\"1\">
      <instrumentConfiguration id=\"IC1\">
        <componentList count=\"0\">
        </componentList>
        <softwareRef ref=\"\"/>
      </instrumentConfiguration>
    </instrumentConfigurationList>
    <run id=\"1\" defaultInstrumentConfigurationRef=\"IC1\">
      <spectrumList count=\"2\">
        <spectrum id=\"scan=1\" index=\"0\" defaultArrayLength=\"0\">
          <scanList count=\"1\">
            <scan instrumentConfigurationRef=\"IC1\">
              <cvParam accession=\"MS:1000016\" cvRef=\"MS\" name=\"scan start time\" value=\"NaN\" unitCvRef=\"UO\" unitAccession=\"UO:0000031\" unitName=\"minute\"/>
              <cvParam accession=\"MS:1000927\" cvRef=\"MS\" name=\"ion injection time\" value=\"0\"/>
            </scan>
          </scanList>
          <precursorList count=\"0\">
          </precursorList>
        </spectrum>
        <spectrum id=\"a=&quot;b&quot;\" index=\"1\" defaultArrayLength=\"0\">
          <scanList count=\"1\">
            <scan instrumentConfigurationRef=\"IC1\">
              <cvParam accession=\"MS:1000016\" cvRef=\"MS\" name=\"scan start time\" value=\"0\" unitCvRef=\"UO\" unitAccession=\"UO:0000031\" unitName=\"minute\"/>
              <cvParam accession=\"MS:1000927\" cvRef=\"MS\" name=\"ion injection time\" value=\"0.5\"/>
            </scan>
          </scanList>
          <precursorList count=\"2\">
            <precursor spectrumRef=\"scan=1\">
              <activation>
                <cvParam accession=\"MS:1000045\" cvRef=\"MS\" name=\"collision energy\" value=\"0\" unitCvRef=\"UO\"/>
              </activation>
            </precursor>
            <precursor spectrumRef=\"scan=0\">
              <selectedIonList count=\"0\">
              </selectedIonList>
              <activation>
                <cvParam accession=\"MS:1000133\" cvRef=\"MS\" name=\"collision-induced dissociation\"/>
                <userParam name=\"ms level\" value=\"1\"/>
                <cvParam accession=\"MS:1000045\" cvRef=\"MS\" name=\"collision energy\" value=\"35\"/>
              </activation>
            </precursor>
          </precursorList>
        </spectrum>
      </spectrumList>
      <chromatogramList count=\"1\">
        <chromatogram id=\"TIC\" index=\"0\" defaultArrayLength=\"0\">
          <userParam name=\"note\" value=\"two
lines\"/>
          <cvParam accession=\"MS:1000235\" cvRef=\"MS\" name=\"total ion current chromatogram\"/>
        </chromatogram>
      </chromatogramList>
    </run>
  </mzML>
  <indexList count=\"2\">
    <index name=\"spectrum\">
      <offset idRef=\"scan=1\">999</offset>
    </index>
  </indexList>
  <indexListOffset>12</indexListOffset>
  <fileChecksum>0000</fileChecksum>
</indexedmzML>";

    #[test]
    fn what_the_writer_gets_wrong_is_mended() {
        let mended = String::from_utf8(mend_in_pieces(DOCUMENT, DOCUMENT.len())).unwrap();
        for gone in [
            "componentList",
            "softwareRef",
            "precursorList count=\"0\"",
            "selectedIonList",
            "value=\"0\"/>",
            "name=\"collision energy\" value=\"0\"",
            // A scan start time the input did not give.
            "NaN",
            "<run id=\"1\"",
            "999",
        ] {
            assert!(!mended.contains(gone), "{gone} in\n{mended}");
        }
        for kept in [
            "<precursorList count=\"2\">\n            <precursor spectrumRef=\"scan=1\">\n              <activation>\n              </activation>\n",
            // A spectrum the document does not hold.
            "<precursor sourceFileRef=\"RAW1\" externalSpectrumID=\"scan=0\">\n              <activation>\n",
            "name=\"collision-induced dissociation\"/>\n                <cvParam accession=\"MS:1000045\" cvRef=\"MS\" name=\"collision energy\" value=\"35\"/>\n                <userParam name=\"ms level\" value=\"1\"/>\n              </activation>",
            // A value over two lines: the lines are passed on as they came.
            "<userParam name=\"note\" value=\"two\nlines\"/>\n          <cvParam accession=\"MS:1000235\"",
            "value=\"0.5\"",
            // A scan start time of 0 that the input gave.
            "name=\"scan start time\" value=\"0\" unitCvRef",
            // A parameter group's parameters in the order of their accessions.
            "name=\"LTQ Orbitrap\"/>\n        <cvParam accession=\"MS:1000529\"",
            "<run id=\"run_1\" startTimeStamp=\"2020-01-02T03:04:05Z\" defaultInstrumentConfigurationRef=\"IC1\">",
        ] {
            assert!(mended.contains(kept), "{kept} not in\n{mended}");
        }
    }

    /// Checks the index of `document` points at each of its spectra and chromatograms, and
    /// its checksum; returns the ids indexed.
    fn indexed_ids(document: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(document).unwrap();
        let offsets: Vec<(String, usize)> = text
            .match_indices("<offset idRef=\"")
            .map(|(at, _)| {
                let rest = &text[at + 15..];
                let (id, rest) = rest.split_once("\">").unwrap();
                let (offset, _) = rest.split_once('<').unwrap();
                (id.to_string(), offset.parse().unwrap())
            })
            .collect();
        for (id, offset) in &offsets {
            let element = &text[*offset..];
            assert!(
                element.starts_with(&format!("<spectrum id=\"{id}\""))
                    || element.starts_with(&format!("<chromatogram id=\"{id}\"")),
                "{id} at {offset}: {}",
                &element[..40]
            );
        }
        let (_, rest) = text.split_once("<indexListOffset>").unwrap();
        let index_offset: usize = rest.split_once('<').unwrap().0.parse().unwrap();
        assert!(text[index_offset..].starts_with("<indexList count=\"2\">"));

        let end = text.find("<fileChecksum>").unwrap() + "<fileChecksum>".len();
        let expected = lower_hex(&Sha1::digest(&document[..end]));
        assert_eq!(&text[end..end + 40], expected);
        assert!(text.ends_with("</fileChecksum>\n</indexedmzML>\n"));
        offsets.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn the_index_points_at_each_element_and_the_checksum_covers_the_document() {
        let mended = mend_in_pieces(DOCUMENT, DOCUMENT.len());
        assert_eq!(indexed_ids(&mended), ["scan=1", "a=&quot;b&quot;", "TIC"]);
    }

    #[test]
    fn the_mending_does_not_depend_on_how_the_bytes_arrive() {
        let whole = mend_in_pieces(DOCUMENT, DOCUMENT.len());
        for piece in [1, 2, 3, 7, 16, 64, 333] {
            assert_eq!(mend_in_pieces(DOCUMENT, piece), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn a_copy_states_the_count_asked_for_and_is_otherwise_unchanged() {
        let mended = mend_in_pieces(DOCUMENT, DOCUMENT.len());
        let mut copy = MendingWriter::new(Vec::new());
        copy.count_spectra_as(12);
        copy.write_all(&mended).unwrap();
        copy.finish().unwrap();
        let copied = copy.inner;
        assert_eq!(indexed_ids(&copied), indexed_ids(&mended));
        let body = |document: &[u8]| {
            let text = String::from_utf8(document.to_vec()).unwrap();
            text[..text.find("<indexList").unwrap()].to_string()
        };
        let recounted =
            body(&mended).replace("<spectrumList count=\"2\">", "<spectrumList count=\"12\">");
        assert_eq!(body(&copied), recounted);

        let mut again = MendingWriter::new(Vec::new());
        again.write_all(&copied).unwrap();
        again.finish().unwrap();
        assert_eq!(
            again.inner, copied,
            "mending a mended document changes nothing"
        );
    }

    #[test]
    fn a_document_without_index_is_an_error() {
        let mut writer = MendingWriter::new(Vec::new());
        writer.write_all(b"<mzML>\n</mzML>\n").unwrap();
        assert!(writer.finish().is_err());
    }

    /// A sink that accepts `room` bytes, then fails as a full disk does.
    struct FullAfter {
        room: usize,
    }

    impl Write for FullAfter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            let n = bytes.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_reported_once_and_later_writes_are_dropped() {
        let mut writer = MendingWriter::new(FullAfter { room: 100 });
        assert!(writer.write_all(DOCUMENT).is_err());
        assert!(writer.write_all(DOCUMENT).is_ok());
        assert!(writer.flush().is_ok());
        assert!(writer.finish().is_err());
    }

    #[test]
    fn run_names_become_xml_ids() {
        for (name, id) in [
            ("1", "_1"),
            ("run 1", "run_1"),
            ("BSA1", "BSA1"),
            ("_x", "_x"),
            ("a:b/c", "a_b_c"),
            ("", "_"),
            ("Ünï.c-o_de", "Ünï.c-o_de"),
        ] {
            assert_eq!(as_xml_id(name), id);
        }
    }
}
