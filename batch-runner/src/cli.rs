//! Command-line arguments, and their conversion into one validated [`PipelineParams`].

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mzforge::isotopes::IsotopeModel;
use mzforge::pipeline::{BadSpectrumPolicy, SignalPolicy};
use mzforge::{MzmlPeaks, PipelineParams};

/// mzforge: read mzML/MGF, centroid profile spectra, write Parquet.
#[derive(Debug, Parser)]
#[command(name = "mzforge", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process mzML/MGF files into DIR/<input stem>/{spectra,peaks,features}.parquet and
    /// run.json.
    Run(Box<RunArgs>),
    /// Summarise files: spectra per level, profile/centroid, RT and m/z ranges, instrument.
    Inspect(InspectArgs),
    /// One AWS Batch job of an analysis: the manifest's input AWS_BATCH_JOB_ARRAY_INDEX (exit 75
    /// = retryable, 65/66/78 = permanent).
    Batch(mzforge_batch_runner::batch::BatchArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Input files, directories (every .mzML, .mzML.gz, .mzML.bz2, .mzMLb, .mgf, .mgf.gz,
    /// .mgf.bz2 file under them) or glob patterns (the format is sniffed); also s3://bucket/key, s3://bucket/prefix/ and
    /// s3://bucket/prefix/*.mzML.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Output directory or s3://bucket/prefix; each input gets a subdirectory named after its stem.
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,

    /// Results of the files under a directory or s3:// prefix input keep their subfolders:
    /// `run data/ --out res/` writes res/plate1/A1/ for data/plate1/A1.mzML (and
    /// s3://b/plates/ gives OUT/plate1/A1/ for s3://b/plates/plate1/A1.mzML), so files of one
    /// name in several folders can run together [default: every result directly under --out]
    #[arg(long)]
    pub keep_folders: bool,

    /// Parameters from a TOML file (same names as run.json's "params"); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Worker threads [default: all cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,

    /// Inputs processed at the same time, sharing the worker threads: for many files on many
    /// cores, where one file's reading and writing leave cores idle. Each input in flight
    /// holds its own buffers (30-60 MiB); reports still come in input order [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub inputs_at_once: Option<u16>,

    /// MS levels to keep, comma separated, e.g. `1` or `1,2` [default: all].
    #[arg(long, value_delimiter = ',', value_name = "LEVELS")]
    pub ms_levels: Option<Vec<u8>>,

    /// Minimum signal-to-noise of a centroid and of the points it is fitted on; 0 keeps every
    /// local maximum [default: 0].
    #[arg(long, value_name = "S")]
    pub min_snr: Option<f32>,

    /// Minimum apex intensity of a centroid [default: 0; a centroid of zero intensity, such
    /// as the zeros some writers pad peak lists with, is never kept].
    #[arg(long, value_name = "I")]
    pub min_intensity: Option<f32>,

    /// Width of the noise-estimation window in m/z units [default: 200].
    #[arg(long, value_name = "MZ")]
    pub noise_window: Option<f64>,

    /// How to decide profile vs centroid [default: auto: the data are checked against the
    /// declaration and win where they disagree].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub signal: Option<SignalArg>,

    /// What to do with a spectrum that cannot be read or decoded (corrupt arrays, a value that
    /// is not a number, a broken tag inside it, an unreadable MGF entry) [default: skip (and
    /// report); a file none of whose spectra can be used fails all the same].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub on_bad_spectrum: Option<BadSpectrumArg>,

    /// Skip charge-state deconvolution (no features.parquet rows, no charges on peaks); the
    /// deconvolution options cannot be given with it.
    #[arg(long, conflicts_with_all = ["charge_range", "isotope_model", "tolerance_ppm", "min_fit"])]
    pub no_deconvolve: bool,

    /// Charges to consider, e.g. `1-8` or `1-60` for intact proteins; an explicit range turns
    /// off the automatic extension [default: 1-8, extended to 1-60 for spectra that show
    /// high-charge envelopes].
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_charge_range)]
    pub charge_range: Option<(u32, u32)>,

    /// Isotope-pattern model [default: averagine].
    #[arg(long, value_enum, value_name = "MODEL")]
    pub isotope_model: Option<ModelArg>,

    /// m/z tolerance between observed and expected isotope peaks, in ppm [default: 10].
    #[arg(long, value_name = "PPM")]
    pub tolerance_ppm: Option<f64>,

    /// Minimum fit (0-1) between an envelope and its isotope pattern [default: 0.8].
    #[arg(long, value_name = "FIT")]
    pub min_fit: Option<f64>,

    /// Most points in one spectrum; a file with more stops with an error naming the spectrum
    /// (a guard against hostile files) [default: 10000000].
    #[arg(long, value_name = "N")]
    pub max_points_per_spectrum: Option<u64>,

    /// Most bytes one compressed array may decompress to (zlib bombs) [default: 268435456].
    #[arg(long, value_name = "BYTES")]
    pub max_array_bytes: Option<u64>,

    /// Most spectra read from one file [default: 100000000].
    #[arg(long, value_name = "N")]
    pub max_spectra: Option<u64>,

    /// Most bytes of (decompressed) input for one spectrum, or the header [default: 536870912].
    #[arg(long, value_name = "BYTES")]
    pub max_spectrum_bytes: Option<u64>,

    /// Also write the centroids as indexed mzML (`centroided.mzML`), readable by OpenMS,
    /// pyteomics and other mzML tools. When deconvolution runs, each centroid also gets its
    /// envelope's charge (a charge array; 0 for centroids in no envelope).
    #[arg(long)]
    pub mzml: bool,

    /// The peak list of `centroided.mzML` (implies --mzml): `centroids`, or `deconvolved` for one
    /// peak per isotopic envelope at its monoisotopic m/z, with summed intensity and charge
    /// [default: centroids].
    #[arg(long, value_name = "PEAKS", value_parser = mzml_peaks_parser())]
    pub mzml_peaks: Option<MzmlPeaks>,

    /// Print one JSON summary per input on stdout instead of text.
    #[arg(long)]
    pub json: bool,

    /// No progress bar or log lines.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files, directories (every .mzML, .mzML.gz, .mzML.bz2, .mzMLb, .mgf, .mgf.gz, .mgf.bz2
    /// file under them) or glob patterns to summarise, each in turn.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Print one JSON object per input, one per line (`"status": "ok"` with the summary, or
    /// `"status": "error"` with the error).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SignalArg {
    Auto,
    Declared,
    Profile,
    Centroid,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelArg {
    Averagine,
    Glycan,
    Glycopeptide,
    Nucleotide,
}

fn parse_charge_range(text: &str) -> Result<(u32, u32), String> {
    let (low, high) = text.split_once('-').unwrap_or((text, text));
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("{text:?} is not a charge range like 1-8"))
    };
    Ok((parse(low)?, parse(high)?))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BadSpectrumArg {
    Skip,
    Fail,
}

/// `--mzml-peaks`: one of [`MzmlPeaks::NAMES`], listed in `--help` and error messages.
fn mzml_peaks_parser() -> impl TypedValueParser<Value = MzmlPeaks> {
    PossibleValuesParser::new(MzmlPeaks::NAMES).map(|name| name.parse().unwrap_or_default())
}

impl RunArgs {
    /// An invalid parameter named as the user gave it: by its flag when a flag set it, by its
    /// path in the config file otherwise (the engine names the path alone).
    fn name_as_given(&self, error: mzforge::Error) -> anyhow::Error {
        let mzforge::Error::InvalidParameter { name, message } = &error else {
            return error.into();
        };
        let flags = [
            ("threads", "--threads", self.threads.is_some()),
            ("ms_levels", "--ms-levels", self.ms_levels.is_some()),
            ("centroid.min_snr", "--min-snr", self.min_snr.is_some()),
            (
                "centroid.min_intensity",
                "--min-intensity",
                self.min_intensity.is_some(),
            ),
            (
                "centroid.noise.window_mz",
                "--noise-window",
                self.noise_window.is_some(),
            ),
            (
                "limits.max_points_per_spectrum",
                "--max-points-per-spectrum",
                self.max_points_per_spectrum.is_some(),
            ),
            (
                "limits.max_array_bytes",
                "--max-array-bytes",
                self.max_array_bytes.is_some(),
            ),
            (
                "limits.max_spectra",
                "--max-spectra",
                self.max_spectra.is_some(),
            ),
            (
                "limits.max_spectrum_bytes",
                "--max-spectrum-bytes",
                self.max_spectrum_bytes.is_some(),
            ),
            (
                "deconvolve.charge_min",
                "--charge-range",
                self.charge_range.is_some(),
            ),
            (
                "deconvolve.charge_max",
                "--charge-range",
                self.charge_range.is_some(),
            ),
            (
                "deconvolve.tolerance_ppm",
                "--tolerance-ppm",
                self.tolerance_ppm.is_some(),
            ),
            ("deconvolve.min_fit", "--min-fit", self.min_fit.is_some()),
        ];
        match flags.iter().find(|(path, _, given)| path == name && *given) {
            Some((_, flag, _)) => anyhow::anyhow!("invalid {flag}: {message}"),
            None => match &self.config {
                Some(config) => anyhow::anyhow!(
                    "invalid parameter `{name}` in {}: {message}",
                    config.display()
                ),
                None => error.into(),
            },
        }
    }

    /// The mzML to write, if any (`--mzml`, `--mzml-peaks`).
    pub fn mzml_output(&self) -> Option<MzmlPeaks> {
        (self.mzml || self.mzml_peaks.is_some()).then(|| self.mzml_peaks.unwrap_or_default())
    }

    /// One validated parameter set: defaults, then the config file, then the flags.
    pub fn params(&self) -> Result<PipelineParams> {
        let mut params = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                toml::from_str::<PipelineParams>(&text)
                    .with_context(|| format!("invalid config {}", path.display()))?
            }
            None => PipelineParams::default(),
        };
        if let Some(v) = self.threads {
            params.threads = v;
        }
        if let Some(v) = &self.ms_levels {
            params.ms_levels = v.clone();
        }
        if let Some(v) = self.min_snr {
            params.centroid.min_snr = v;
        }
        if let Some(v) = self.min_intensity {
            params.centroid.min_intensity = v;
        }
        if let Some(v) = self.noise_window {
            params.centroid.noise.window_mz = v;
        }
        if let Some(v) = self.signal {
            params.signal = match v {
                SignalArg::Auto => SignalPolicy::Auto,
                SignalArg::Declared => SignalPolicy::Declared,
                SignalArg::Profile => SignalPolicy::Profile,
                SignalArg::Centroid => SignalPolicy::Centroid,
            };
        }
        if let Some(v) = self.on_bad_spectrum {
            params.on_bad_spectrum = match v {
                BadSpectrumArg::Skip => BadSpectrumPolicy::Skip,
                BadSpectrumArg::Fail => BadSpectrumPolicy::Fail,
            };
        }
        let limits = &mut params.limits;
        for (flag, limit) in [
            (
                self.max_points_per_spectrum,
                &mut limits.max_points_per_spectrum,
            ),
            (self.max_array_bytes, &mut limits.max_array_bytes),
            (self.max_spectra, &mut limits.max_spectra),
            (self.max_spectrum_bytes, &mut limits.max_spectrum_bytes),
        ] {
            if let Some(v) = flag {
                *limit = v;
            }
        }
        let deconvolve = &mut params.deconvolve;
        if self.no_deconvolve {
            deconvolve.enabled = false;
        }
        // clap refuses these flags beside --no-deconvolve; a config file that turns
        // deconvolution off must refuse them too, or they would be recorded in run.json as if
        // they had been used.
        if !deconvolve.enabled {
            let given: Vec<&str> = [
                ("--charge-range", self.charge_range.is_some()),
                ("--isotope-model", self.isotope_model.is_some()),
                ("--tolerance-ppm", self.tolerance_ppm.is_some()),
                ("--min-fit", self.min_fit.is_some()),
            ]
            .into_iter()
            .filter_map(|(flag, is_given)| is_given.then_some(flag))
            .collect();
            if !given.is_empty() {
                bail!(
                    "{} set deconvolution, which `deconvolve.enabled = false` in the config turns \
                     off; remove them or turn it on",
                    given.join(", ")
                );
            }
        }
        if let Some((low, high)) = self.charge_range {
            deconvolve.charge_min = low;
            deconvolve.charge_max = high;
            deconvolve.auto_charge = false;
        }
        if let Some(model) = self.isotope_model {
            deconvolve.model = match model {
                ModelArg::Averagine => IsotopeModel::Averagine,
                ModelArg::Glycan => IsotopeModel::Glycan,
                ModelArg::Glycopeptide => IsotopeModel::Glycopeptide,
                ModelArg::Nucleotide => IsotopeModel::Nucleotide,
            };
        }
        if let Some(v) = self.tolerance_ppm {
            deconvolve.tolerance_ppm = v;
        }
        if let Some(v) = self.min_fit {
            deconvolve.min_fit = v;
        }
        params
            .validate()
            .map_err(|error| self.name_as_given(error))?;
        if self.mzml_peaks == Some(MzmlPeaks::Deconvolved) && !params.deconvolve.enabled {
            // Without envelopes the mzML would hold the centroids under a header that says
            // they were deisotoped and charge-deconvolved.
            bail!(
                "--mzml-peaks deconvolved needs deconvolution, which --no-deconvolve (or \
                 `deconvolve.enabled = false` in the config) turns off"
            );
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use mzforge_batch_runner::remote::INPUT_EXTENSIONS;

    use super::Cli;

    /// The help of `run` and `inspect` lists every extension a directory input contributes,
    /// so it cannot fall behind the readers (it once omitted the bzip2 ones).
    #[test]
    fn help_names_every_extension_a_directory_contributes() {
        let mut cli = Cli::command();
        for name in ["run", "inspect"] {
            let help = cli
                .find_subcommand_mut(name)
                .expect(name)
                .render_long_help()
                .to_string()
                .to_ascii_lowercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            for extension in INPUT_EXTENSIONS {
                let listed = format!("{extension},");
                let last = format!("{extension} file");
                assert!(
                    help.contains(&listed) || help.contains(&last),
                    "`mzforge {name} --help` does not name {extension}"
                );
            }
        }
    }
}
