#!/usr/bin/env python3
"""Builds a larger mzML from a real one: the same spectra written N times over, with fresh ids,
indices and retention times shifted by the run's length each time. Plain mzML (no index).

    python3 benches/scripts/scale_input.py ../shared/data/runs/BSA1.mzML 10 /tmp/BSA1x10.mzML
"""
import re
import sys


def main() -> None:
    source, times, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    text = open(source, encoding="utf-8", errors="surrogateescape").read()
    start = text.index("<spectrumList")
    head_end = text.index(">", start) + 1
    end = text.index("</spectrumList>")
    body = text[head_end:end]
    spectra = re.findall(r"<spectrum\b.*?</spectrum>", body, flags=re.S)
    times_min = [float(t) for t in re.findall(r'name="scan start time" value="([0-9.eE+-]+)"', body)]
    span = (max(times_min) - min(times_min) + 1.0) if times_min else 1.0
    header = re.sub(r'<spectrumList count="\d+"', f'<spectrumList count="{len(spectra) * times}"', text[:head_end])
    if "<indexedmzML" in header:
        header = re.sub(r"<indexedmzML[^>]*>\s*", "", header, count=1)
    with open(target, "w", encoding="utf-8", errors="surrogateescape") as out:
        out.write(header)
        index = 0
        for copy in range(times):
            for spectrum in spectra:
                s = re.sub(r'index="\d+"', f'index="{index}"', spectrum, count=1)
                s = re.sub(r'id="([^"]+)"', lambda m: f'id="{m.group(1)} copy={copy}"', s, count=1)
                s = re.sub(
                    r'(name="scan start time" value=")([0-9.eE+-]+)',
                    lambda m: f"{m.group(1)}{float(m.group(2)) + copy * span}",
                    s,
                )
                out.write("\n" + s)
                index += 1
        out.write("\n</spectrumList>\n</run>\n</mzML>\n")


if __name__ == "__main__":
    main()
