// Admin dashboard: the daily and status charts (Chart.js), and the live sales table, refreshed every 2 s.
(function () {
  "use strict";

  const STATUS_COLORS = { pending: "#ffc107", paid: "#0dcaf0", shipped: "#0d6efd", completed: "#198754", cancelled: "#adb5bd" };

  function drawCharts() {
    const holder = document.getElementById("chart-data");
    if (!holder || !window.Chart) return;
    const data = JSON.parse(holder.dataset.stats);
    const daily = document.getElementById("daily-chart");
    if (daily) {
      new window.Chart(daily, {
        data: {
          labels: data.daily.map(function (d) { return d.date.slice(5); }),
          datasets: [
            { type: "bar", label: "Revenue (¥)", data: data.daily.map(function (d) { return Number(d.revenue); }),
              backgroundColor: "rgba(220, 53, 69, .35)", borderColor: "#dc3545", borderWidth: 1, yAxisID: "revenue", order: 2 },
            { type: "line", label: "Orders", data: data.daily.map(function (d) { return d.orders; }),
              borderColor: "#0d6efd", backgroundColor: "#0d6efd", tension: 0.25, pointRadius: 2, yAxisID: "orders", order: 1 },
          ],
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            orders: { type: "linear", position: "left", beginAtZero: true, ticks: { precision: 0 },
                      title: { display: true, text: "Orders" } },
            revenue: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                       title: { display: true, text: "Revenue (¥)" } },
          },
          plugins: { legend: { position: "bottom" } },
        },
      });
    }
    const status = document.getElementById("status-chart");
    if (status) {
      const labels = data.status_labels; // status -> label, in the life cycle's order (labels.py)
      const keys = Object.keys(labels);
      const counts = keys.map(function (k) { return data.status_counts[k] || 0; });
      new window.Chart(status, {
        type: "doughnut",
        data: {
          labels: keys.map(function (k) { return labels[k]; }),
          datasets: [{ data: counts, backgroundColor: keys.map(function (k) { return STATUS_COLORS[k]; }) }],
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
                   plugins: { legend: { position: "bottom" } } },
      });
    }
  }

  function cell(text, classes) {
    const td = document.createElement("td");
    td.className = classes || "";
    td.textContent = text;
    return td;
  }

  const shown = function (v) { return v === null || v === undefined ? "—" : String(v); };

  function when(iso) {
    return iso ? iso.slice(0, 16).replace("T", " ") + " UTC" : "";
  }

  function renderLive(table, sales) {
    const body = table.tBodies[0];
    const rows = sales.map(function (s) {
      const tr = document.createElement("tr");
      tr.dataset.saleId = s.id;
      const name = document.createElement("td");
      name.className = "text-truncate";
      name.style.maxWidth = "16rem";
      const link = document.createElement("a");
      link.href = "/admin/seckill/" + s.id;
      link.textContent = "#" + s.id + " " + s.goods.name;
      name.appendChild(link);
      tr.appendChild(name);
      const fields = [
        ["remaining", shown(s.remaining) + " / " + s.total_stock], ["sold", String(s.sold)],
        ["queued", shown(s.queued)], ["pending", shown(s.pending)], ["dead", shown(s.dead)],
        ["orders_per_sec", Number(s.orders_per_sec).toFixed(1)],
      ];
      fields.forEach(function (f) {
        const td = cell(f[1], "text-end" + (f[0] === "dead" && s.dead ? " text-danger fw-semibold" : ""));
        td.dataset.field = f[0];
        tr.appendChild(td);
      });
      tr.appendChild(cell(when(s.end_time)));
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.className = "text-secondary";
      tr.dataset.empty = "1";
      const td = cell("No flash sale is live right now.");
      td.colSpan = 8;
      tr.appendChild(td);
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
  }

  function followLiveSales() {
    const table = document.getElementById("live-sales");
    if (!table || !window.FlashSale) return;
    const stamp = document.getElementById("live-updated");
    const every = Number(table.dataset.refreshMs) || 2000;
    let busy = false;
    async function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const r = await window.FlashSale.api("GET", "/api/admin/stats?only=live");
        if (r && r.code === 200) {
          renderLive(table, r.data.live_sales);
          if (stamp) stamp.textContent = new Date().toLocaleTimeString();
        } else if (stamp) {
          stamp.textContent = "update failed (" + (r ? r.msg : "no answer") + ")";
        }
      } catch (e) {
        if (stamp) stamp.textContent = "offline, retrying";
      } finally {
        busy = false;
      }
    }
    window.setInterval(refresh, every);
  }

  drawCharts();
  followLiveSales();
})();
