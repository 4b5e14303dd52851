// mizzen dashboard: charts (uPlot, served locally) and live updates by short polling.
(function () {
  const palette = ["#0969da", "#cf222e", "#2da44e", "#8250df", "#bf8700", "#1b7c83"];

  function drawChart(fig, series, opts) {
    const plot = fig.querySelector(".plot");
    fig.dataset.points = String(series.y.length);
    if (!window.uPlot || !plot) return null;
    plot.innerHTML = "";
    const width = Math.max(plot.clientWidth || 400, 300);
    const u = new uPlot({
      width: width, height: 200,
      scales: { x: { time: !!opts.time } },
      legend: { show: true },
      axes: [{ stroke: "#656d76" }, { stroke: "#656d76", size: 56 }],
      series: [
        { label: opts.time ? "run started" : (series.xlabel || "step") },
        { label: fig.dataset.name, stroke: palette[opts.index % palette.length], width: 2,
          points: { show: true, size: 6, fill: "#fff" } },
      ],
    }, [series.x, series.y], plot);
    if (opts.onClick && series.ids) {
      u.over.addEventListener("click", () => {
        const i = u.cursor.idx;
        if (i != null) opts.onClick(series.ids[i]);
      });
      u.over.style.cursor = "pointer";
    }
    return u;
  }

  function drawAll(kind, data, opts) {
    const charts = {};
    let i = 0;
    document.querySelectorAll(`figure[data-chart="${kind}"]`).forEach((fig) => {
      const s = data[fig.dataset.name];
      if (s) charts[fig.dataset.name] = drawChart(fig, s, Object.assign({ index: i++ }, opts));
    });
    return charts;
  }

  function addChart(name, series, index) {
    const box = document.getElementById("metrics");
    const none = document.getElementById("no-metrics");
    if (none) none.remove();
    const fig = document.createElement("figure");
    fig.className = "chart";
    fig.dataset.chart = "within";
    fig.dataset.name = name;
    fig.innerHTML = `<figcaption></figcaption><div class="plot"></div>`;
    fig.querySelector("figcaption").textContent = name;
    box.appendChild(fig);
    return drawChart(fig, series, { index: index });
  }

  function runPage(cfg) {
    const workload = cfg.api.split("/")[3];
    let charts = drawAll("within", cfg.metrics, {});
    drawAll("across", cfg.across, { time: true, onClick: (id) => { location.href = `/runs/${workload}/${id}`; } });
    if (!cfg.live) return;
    const tick = async () => {
      const pres = document.querySelectorAll("#logs pre[data-step]");
      const offsets = Array.from(pres).map((p) => `${p.dataset.step}:${p.dataset.offset}`).join(",");
      let data;
      try {
        const resp = await fetch(`${cfg.api}?logs=${encodeURIComponent(offsets)}`, { cache: "no-store" });
        if (!resp.ok) throw new Error(resp.status);
        data = await resp.json();
      } catch (e) { setTimeout(tick, 3000); return; }
      const badge = document.getElementById("run-status");
      badge.textContent = data.status;
      badge.className = `status status-${data.status}`;
      document.getElementById("run-reason").textContent = data.reason || "";
      document.getElementById("run-duration").textContent = data.duration;
      document.getElementById("timeline").innerHTML = data.timeline;
      const graph = document.getElementById("graph");
      if (graph && data.graph) graph.innerHTML = data.graph;
      for (const [step, log] of Object.entries(data.logs)) {
        let pre = document.querySelector(`#logs pre[data-step="${CSS.escape(step)}"]`);
        if (!pre) {
          const none = document.getElementById("no-logs");
          if (none) none.remove();
          const det = document.createElement("details");
          det.className = "log"; det.open = true;
          det.innerHTML = "<summary></summary><pre></pre>";
          det.querySelector("summary").textContent = step;
          pre = det.querySelector("pre");
          pre.dataset.step = step; pre.dataset.offset = "0";
          document.getElementById("logs").appendChild(det);
        }
        if (log.offset < Number(pre.dataset.offset)) pre.textContent = "";
        if (log.text) {
          const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.textContent += log.text;
          if (atEnd) pre.scrollTop = pre.scrollHeight;
        }
        pre.dataset.offset = String(log.offset);
      }
      let index = Object.keys(charts).length;
      for (const [name, series] of Object.entries(data.metrics)) {
        const fig = document.querySelector(`figure[data-chart="within"][data-name="${CSS.escape(name)}"]`);
        if (!fig) { charts[name] = addChart(name, series, index++); continue; }
        if (Number(fig.dataset.points) !== series.y.length) {
          fig.dataset.points = String(series.y.length);
          if (charts[name]) charts[name].setData([series.x, series.y]);
        }
      }
      if (data.final) { document.body.dataset.final = "1"; return; }
      setTimeout(tick, 1500);
    };
    setTimeout(tick, 1500);
  }

  function liveRuns() {
    const table = document.getElementById("runs-table");
    if (!table || table.dataset.live !== "1") return;
    const url = new URL(location.href);
    url.searchParams.set("fragment", "1");
    setInterval(async () => {
      try {
        const resp = await fetch(url, { cache: "no-store" });
        if (resp.ok) document.getElementById("runs-rows").innerHTML = await resp.text();
      } catch (e) { /* the server may be restarting */ }
    }, 5000);
  }

  window.mizzen = { runPage: runPage, liveRuns: liveRuns };
})();
