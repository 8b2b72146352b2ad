//! `ResultDir`: results appear whole or not at all, and what killed runs leave behind is
//! cleaned up by the next run.

use mzforge::output::ResultDir;

#[cfg(target_os = "linux")]
#[test]
fn abandoned_staging_of_dead_processes_is_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("res");
    let make = |name: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("peaks.parquet"), b"partial").unwrap();
        path
    };
    // No process has these ids (above Linux's pid_max); pid 1 always exists.
    let dead = make(".res.partial-4294967295");
    let dead_old = make(".res.partial-4294967294.old");
    let live = make(".res.partial-1");
    let other = make(".other.partial-4294967295");
    for round in 0..3 {
        let result = ResultDir::create(&target).unwrap();
        std::fs::write(result.file("peaks.parquet"), format!("round {round}")).unwrap();
        std::fs::write(result.file("run.json"), "{}").unwrap();
        result.commit().unwrap();
    }
    assert!(!dead.exists() && !dead_old.exists());
    assert!(
        live.exists(),
        "a live process's staging directory was removed"
    );
    assert!(
        other.exists(),
        "another result's staging directory was removed"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("peaks.parquet")).unwrap(),
        "round 2"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".other.partial-4294967295", ".res.partial-1", "res"]
    );
}

#[test]
fn only_an_earlier_result_or_an_empty_directory_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // The user's own folder named as the stem, holding the input itself, and a file.
    let folder = dir.path().join("run1");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("run1.mzML"), "<mzML/>").unwrap();
    let file = dir.path().join("run2");
    std::fs::write(&file, "notes").unwrap();
    for target in [&folder, &file] {
        let err = ResultDir::create(target).unwrap_err();
        assert!(
            matches!(err, mzforge::Error::InvalidParameter { name: "out", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not an mzforge result"), "{err}");
    }
    // Something of the user's that appears while the result is written is not replaced either.
    let late = dir.path().join("run3");
    let result = ResultDir::create(&late).unwrap();
    std::fs::write(result.file("run.json"), "{}").unwrap();
    std::fs::create_dir(&late).unwrap();
    std::fs::write(late.join("notes.txt"), "mine").unwrap();
    assert!(result.commit().is_err());
    assert_eq!(
        std::fs::read_to_string(folder.join("run1.mzML")).unwrap(),
        "<mzML/>"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "notes");
    assert_eq!(
        std::fs::read_to_string(late.join("notes.txt")).unwrap(),
        "mine"
    );
    // An empty directory and an earlier result are replaced.
    let empty = dir.path().join("run4");
    std::fs::create_dir(&empty).unwrap();
    for _ in 0..2 {
        let result = ResultDir::create(&empty).unwrap();
        std::fs::write(result.file("run.json"), "{}").unwrap();
        result.commit().unwrap();
    }
    assert!(empty.join("run.json").is_file());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["run1", "run2", "run3", "run4"]);
}

/// The bundled simulated run, processed with the default parameters.
fn sim_processed() -> Vec<mzforge::ProcessedSpectrum> {
    let mut processed = Vec::new();
    mzforge::Pipeline::new(mzforge::PipelineParams::default())
        .unwrap()
        .run_path(&crate::common::fixture("sim_profile.mzML"), &mut |batch| {
            processed.extend_from_slice(batch);
            Ok(())
        })
        .unwrap();
    processed
}

/// A sink that accepts `room` bytes, then fails as a lost connection would.
struct FailingSink {
    room: usize,
}

impl std::io::Write for FailingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "upload connection lost",
            ));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_table_sink_is_a_write_error_naming_the_table() {
    use mzforge::output::{TableWriters, PEAKS_FILE};
    use mzforge::Error;

    let processed = sim_processed();
    let roomy = || FailingSink { room: usize::MAX };
    let mut writers =
        TableWriters::with_features(roomy(), FailingSink { room: 100 }, roomy(), "{}").unwrap();
    // Parquet buffers rows; the peaks sink fails when its row group and footer are written.
    let error = writers
        .write(&processed)
        .and_then(|()| writers.finish_all().map(|_| ()))
        .unwrap_err();
    match &error {
        Error::Write { path, source } => {
            assert_eq!(path.to_str(), Some(PEAKS_FILE), "{error}");
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionReset);
        }
        other => panic!("expected a write error, got {other:?}"),
    }
}

#[test]
fn table_row_groups_are_bounded_by_memory_not_only_by_rows() {
    use mzforge::output::TableWriters;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let mut processed = sim_processed();
    let mut writers = TableWriters::new(Vec::new(), Vec::new(), "{}").unwrap();
    // 120,000 spectrum rows with distinct native ids, as in a long run, under the 256k-row
    // cap: only memory can split them.
    for copy in 0..6000 {
        for s in &mut processed {
            s.meta.native_id = format!(
                "controllerType=0 controllerNumber=1 scan={} copy={copy}",
                s.meta.index
            );
        }
        writers.write(&processed).unwrap();
    }
    let (spectra, _) = writers.finish().unwrap();
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, &spectra).unwrap();
    let reader = SerializedFileReader::new(file).unwrap();
    let metadata = reader.metadata();
    let rows = metadata.file_metadata().num_rows() as usize;
    let by_row_cap = rows.div_ceil(256 * 1024);
    assert!(
        metadata.num_row_groups() > by_row_cap,
        "{rows} rows in {} row groups: only the row cap split them",
        metadata.num_row_groups()
    );
    assert_eq!(
        metadata
            .row_groups()
            .iter()
            .map(|g| g.num_rows() as usize)
            .sum::<usize>(),
        rows
    );
}

#[test]
fn measured_values_are_byte_stream_split_ids_delta_coded_and_read_back_exactly() {
    use mzforge::output::{peaks_batch, TableWriters};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;

    let processed = sim_processed();
    let mut writers = TableWriters::new(Vec::new(), Vec::new(), "{}").unwrap();
    writers.write(&processed).unwrap();
    let (_, peaks) = writers.finish().unwrap();
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, &peaks).unwrap();

    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let group = builder.metadata().row_group(0);
    for column in group.columns() {
        let name = column.column_path().string();
        let encodings: Vec<Encoding> = column.encodings().collect();
        let expected = match name.as_str() {
            "mz" | "intensity" | "snr" | "fwhm" => Some(Encoding::BYTE_STREAM_SPLIT),
            "spectrum_index" | "envelope_id" => Some(Encoding::DELTA_BINARY_PACKED),
            _ => None,
        };
        if let Some(expected) = expected {
            assert!(encodings.contains(&expected), "{name}: {encodings:?}");
            assert!(
                column.dictionary_page_offset().is_none(),
                "{name} has a dictionary"
            );
        }
    }
    let read: Vec<_> = builder.build().unwrap().map(Result::unwrap).collect();
    let read = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
    let written = peaks_batch(&processed).unwrap();
    assert!(written.num_rows() > 1000);
    assert_eq!(read, written);
}

/// A sink whose bytes stay readable after the writer that owns it is gone.
#[derive(Clone, Default)]
struct SharedSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn tables_dropped_unfinished_get_no_footer_and_finished_ones_do() {
    use mzforge::output::TableWriters;

    let processed = sim_processed();
    let is_parquet = |sink: &SharedSink| {
        let bytes = sink.0.lock().unwrap().clone();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        parquet::file::reader::SerializedFileReader::new(file).is_ok()
    };
    for finish in [false, true] {
        let sinks = [
            SharedSink::default(),
            SharedSink::default(),
            SharedSink::default(),
        ];
        let mut writers =
            TableWriters::with_features(sinks[0].clone(), sinks[1].clone(), sinks[2].clone(), "{}")
                .unwrap();
        writers.write(&processed).unwrap();
        if finish {
            writers.finish_all().unwrap();
        } else {
            // A failed run drops its writers: their threads stop without a footer (a
            // result object uploaded from such a sink would otherwise look complete).
            drop(writers);
        }
        for sink in &sinks {
            assert_eq!(is_parquet(sink), finish);
        }
    }
}
