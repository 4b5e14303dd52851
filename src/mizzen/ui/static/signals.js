// The signal page's chart: one line per series (the signal, a segment, or each arm), its
// confidence interval as a band, the bucket still in progress drawn hollow.
(function () {
  const palette = ["#0969da", "#cf222e", "#2da44e", "#8250df", "#bf8700", "#1b7c83"];
  window.mizzenSignal = function (cfg) {
    const fig = document.querySelector("figure[data-chart=signal]");
    const plot = fig && fig.querySelector(".plot");
    const names = Object.keys(cfg.lines);
    if (!plot || !window.uPlot || !names.length || !cfg.lines[names[0]].x.length) return;
    const xs = Array.from(new Set(names.flatMap((n) => cfg.lines[n].x))).sort((a, b) => a - b);
    const at = (line, key) => xs.map((x) => { const i = line.x.indexOf(x); return i < 0 ? null : line[key][i]; });
    const data = [xs], series = [{ label: cfg.grain }], bands = [];
    names.forEach((name, k) => {
      const line = cfg.lines[name], colour = palette[k % palette.length];
      const done = xs.map((x) => { const i = line.x.indexOf(x); return i < 0 || !line.complete[i] ? null : line.y[i]; });
      const partial = xs.map((x) => { const i = line.x.indexOf(x); return i < 0 || line.complete[i] ? null : line.y[i]; });
      data.push(done);
      series.push({ label: name, stroke: colour, width: 2, points: { show: true, size: 5, fill: colour } });
      if (line.low.some((v) => v !== null)) {
        data.push(at(line, "high"), at(line, "low"));
        const hi = data.length - 2;
        series.push({ label: name + " high", stroke: "transparent", points: { show: false } },
                    { label: name + " low", stroke: "transparent", points: { show: false } });
        bands.push({ series: [hi, hi + 1], fill: colour + "22" });
      }
      if (partial.some((v) => v !== null)) {
        data.push(partial);
        series.push({ label: name + " (in progress)", stroke: colour, width: 0, points: { show: true, size: 8, fill: "#fff", stroke: colour } });
      }
    });
    plot.innerHTML = "";
    const u = new uPlot({
      width: Math.max(plot.clientWidth || 600, 320), height: 280,
      scales: { x: { time: true } }, bands: bands, series: series,
      legend: { show: true },
      axes: [{ stroke: "#656d76" }, { stroke: "#656d76", size: 60 }],
    }, data, plot);
    // the bands' edges need no legend entry of their own
    u.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => {
      if (i > 0 && / (high|low)$/.test(series[i].label)) row.style.display = "none";
    });
    fig.dataset.drawn = String(names.length);
  };
})();
