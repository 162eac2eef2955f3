#include "fleetsim/report.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/file.h"

namespace aloft::fleetsim {

namespace {

std::string Fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string Row(const std::string& what, const std::string& value) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "  %-34s %s\n", what.c_str(), value.c_str());
  return buf;
}

}  // namespace

void PrintSummary(const Scenario& s, const RunResult& r, std::ostream& out) {
  std::ostringstream t;
  t << "\nscenario " << s.name << ": " << s.devices() << " devices, " << s.servers << " aloftd on "
    << s.database << "\n";
  for (const auto& ro : r.rollouts) {
    t << Row(
        "rollout " + ro.name + " (" + ro.release + ")",
        ro.state + " at wave " + std::to_string(ro.wave) + (r.timed_out ? " (TIMED OUT)" : ""));
  }
  t << Row("registration (all devices)", Fixed(r.register_s) + " s");
  t << Row("dispatch (every member offered)",
           r.dispatch_s > 0 ? Fixed(r.dispatch_s) + " s" : std::string("-"));
  uint64_t members = 0;  // the rollout's actions, whatever their state
  for (const auto& [state, n] : r.checks.server_states) members += n;

  t << Row("devices dispatched per second",
           r.dispatch_s > 0 ? Fixed(static_cast<double>(members) / r.dispatch_s, 0) : "-");
  t << Row("until all updated (rollout's end)", Fixed(r.updated_s) + " s");
  t << Row("check-ins", std::to_string(r.check_ins) + " (" + std::to_string(r.check_in_errors) +
                            " failed or refused, retried)");
  t << Row("check-in latency p50 / p99",
           Fixed(r.check_in_p50_ms, 2) + " / " + Fixed(r.check_in_p99_ms, 2) + " ms");
  t << Row("downloads", std::to_string(r.downloads) + " (" + std::to_string(r.download_drops) +
                            " dropped and resumed, " + std::to_string(r.fleet.bad_downloads) +
                            " failed their hash)");
  t << Row("power cuts during install", std::to_string(r.power_cuts));
  t << Row("status reports",
           std::to_string(r.feedbacks) + " (" + std::to_string(r.feedback_retries) + " retried)");
  if (s.Uses(Protocol::kMqtt)) {
    t << Row("MQTT sessions", std::to_string(r.mqtt.connects) + " connects, " +
                                  std::to_string(r.mqtt.refused) + " refused, " +
                                  std::to_string(r.mqtt.drops) + " dropped");
    t << Row("MQTT otaCheck answers / pushes",
             std::to_string(r.fleet.mqtt_checks) + " / " + std::to_string(r.fleet.mqtt_pushes));
    t << Row("MQTT reports", std::to_string(r.fleet.mqtt_reports) + " (" +
                                 std::to_string(r.fleet.mqtt_report_retries) +
                                 " sent again after a lost connection)");
    t << Row("MQTT final reports told again",
             std::to_string(r.fleet.mqtt_reoffers) +
                 " (an otaCheck answered before a server handled the report)");
    t << Row("Mosquitto CPU / peak RSS",
             Fixed(r.broker_cpu_s) + " s / " + Fixed(r.broker_peak_rss_mib) + " MiB");
  }
  if (s.Uses(Protocol::kDdi)) {
    t << Row("DDI polls / deploymentBase reads",
             std::to_string(r.fleet.ddi_polls) + " / " + std::to_string(r.fleet.ddi_deployments));
  }
  if (r.proxied) {
    t << Row("fault proxy", std::to_string(r.proxy.connections) + " connections, " +
                                std::to_string(r.proxy.reset) + " reset by cuts, " +
                                std::to_string(r.proxy.refused) + " refused upstream");
  }
  for (size_t k = 0; k < r.server_cpu_s.size(); ++k) {
    t << Row("aloftd " + std::to_string(k) + " CPU / peak RSS",
             Fixed(r.server_cpu_s[k]) + " s / " + Fixed(r.server_peak_rss_mib[k]) + " MiB");
  }
  if (s.database == "postgres") {
    t << Row("PostgreSQL CPU (all its processes)", Fixed(r.pg_cpu_s) + " s");
  }
  t << Row("simulator CPU / peak RSS",
           Fixed(r.sim_cpu_s) + " s / " + Fixed(r.sim_peak_rss_mib) + " MiB");
  std::string states;
  for (const auto& [k, v] : r.checks.server_states) {
    states += (states.empty() ? "" : ", ") + k + " " + std::to_string(v);
  }
  t << Row("actions on the server", states.empty() ? "none" : states);
  t << Row("devices on the new version", std::to_string(r.checks.on_release));
  t << Row("checks", "lost: " + std::to_string(r.checks.lost) +
                         ", duplicated: " + std::to_string(r.checks.duplicated) +
                         ", wrong version: " + std::to_string(r.checks.wrong_version) +
                         (s.HasVehicles() ? ", mixed: " + std::to_string(r.checks.mixed) : ""));
  for (const std::string& e : r.checks.examples) t << "    " << e << "\n";
  if (!r.notes.empty()) {
    t << "  noted:\n";
    for (const std::string& n : r.notes) t << "    " << n << "\n";
  }
  if (!r.events.empty()) {
    t << "  events:\n";
    for (const std::string& e : r.events) t << "    " << e << "\n";
  }
  out << t.str();
}

Result<std::vector<std::string>> WritePlots(const Scenario& s, const RunResult& r,
                                            const std::string& dir) {
  std::filesystem::create_directories(dir);
  const size_t servers = r.server_cpu_s.size();
  std::ostringstream csv;
  csv << "t,check_ins,errors,p50_ms,p99_ms,offered,succeeded,failed,busy,wave,sim_cpu,sim_rss_mib,"
         "pg_cpu,pg_rss_mib,reports";
  for (size_t k = 0; k < servers; ++k) csv << ",cpu" << k << ",rss" << k;
  csv << "\n";
  for (const Sample& p : r.samples) {
    if (p.t < -1000) continue;  // registration
    csv << Fixed(p.t, 1) << "," << p.check_ins << "," << p.errors << "," << Fixed(p.p50_ms, 3)
        << "," << Fixed(p.p99_ms, 3) << "," << p.offered << "," << p.succeeded << "," << p.failed
        << "," << p.busy << "," << p.wave << "," << Fixed(p.sim_cpu) << "," << Fixed(p.sim_rss_mib)
        << "," << Fixed(p.pg_cpu) << "," << Fixed(p.pg_rss_mib) << "," << p.reports;
    for (size_t k = 0; k < servers; ++k) {
      csv << "," << Fixed(k < p.server_cpu.size() ? p.server_cpu[k] : 0) << ","
          << Fixed(k < p.server_rss_mib.size() ? p.server_rss_mib[k] : 0);
    }
    csv << "\n";
  }
  const std::string data = dir + "/" + s.name + ".csv";
  ALOFT_RETURN_IF_ERROR(WriteFileAtomic(data, csv.str()));
  // Events as vertical lines on every plot.
  std::ostringstream marks;
  int n = 1;
  for (const std::string& e : r.events) {
    const double at = std::atof(e.c_str());
    marks << "set arrow " << n << " from " << Fixed(at) << ", graph 0 to " << Fixed(at)
          << ", graph 1 nohead dt 2 lc rgb '#888888'\n";
    ++n;
  }
  const std::string base = dir + "/" + s.name;
  std::ostringstream gp;
  gp << "set datafile separator ','\nset terminal svg size 900,420 dynamic font 'sans,11'\n"
     << "set key outside right top\nset grid\nset xlabel 'seconds since the rollout started'\n"
     << marks.str();
  gp << "set output '" << base << "-progress.svg'\nset title '" << s.name << ": rollout to "
     << s.devices() << " devices'\nset ylabel 'devices'\nset y2label 'wave'\nset y2tics 1\n"
     << "set y2range [0:" << s.waves.size() + 1 << "]\n"
     << "plot '" << data << "' every ::1 using 1:6 with lines lw 2 title 'offered', '' every ::1 "
     << "using 1:7 with lines lw 2 title 'succeeded', '' every ::1 using 1:8 with lines lw 2 "
     << "title 'failed', '' every ::1 using 1:9 with lines title 'busy', '' every ::1 using "
     << "1:10 axes x1y2 with steps dt 2 lc rgb '#666666' title 'wave'\n"
     << "unset y2tics\nunset y2label\nset autoscale y2\n";
  gp << "set output '" << base << "-latency.svg'\nset title '" << s.name
     << ": check-ins and reports per second, check-in latency'\nset ylabel 'ms'\nset logscale y\n"
     << "set y2label 'per second'\nset y2tics autofreq\n"
     << "plot '" << data << "' every ::1 using 1:($4>0?$4:1/0) with lines lw 2 title 'p50', '' "
     << "every ::1 using 1:($5>0?$5:1/0) with lines lw 2 title 'p99', '' every ::1 using 1:2 axes "
     << "x1y2 with lines dt 3 title 'check-ins/s', '' every ::1 using 1:15 axes x1y2 with lines "
     << "dt 3 title 'reports/s'\nunset logscale y\n";
  gp << "set output '" << base << "-servers.svg'\nset title '" << s.name
     << ": CPU (% of one core) and memory'\nset ylabel 'CPU %'\nset y2label 'RSS MiB'\n"
     << "set y2tics autofreq\nplot ";
  // Each process one colour: CPU solid, RSS dotted (right axis).
  for (size_t k = 0; k < servers; ++k) {
    gp << "'" << data << "' every ::1 using 1:" << 16 + 2 * k << " with lines lw 2 lc " << k + 1
       << " title 'aloftd " << k << " CPU', '' every ::1 using 1:" << 17 + 2 * k
       << " axes x1y2 with lines dt 3 lc " << k + 1 << " title 'aloftd " << k << " RSS', ";
  }
  if (s.database == "postgres") {
    gp << "'' every ::1 using 1:13 with lines lw 2 lc 6 title 'PostgreSQL CPU', '' every ::1 "
          "using 1:14 axes x1y2 with lines dt 3 lc 6 title 'PostgreSQL private RSS', ";
  }
  gp << "'' every ::1 using 1:11 with lines lw 2 lc 7 title 'simulator CPU', '' every ::1 using "
        "1:12 axes x1y2 with lines dt 3 lc 7 title 'simulator RSS'\n";
  const std::string script = base + ".gp";
  ALOFT_RETURN_IF_ERROR(WriteFileAtomic(script, gp.str()));
  std::vector<std::string> written;
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return written;
  if (std::system(("gnuplot '" + script + "' 2>'" + base + ".gnuplot.log'").c_str()) != 0) {
    return Error(Code::kInternal,
                 "gnuplot failed on " + script + " (see " + base + ".gnuplot.log)");
  }
  for (const char* k : {"progress", "latency", "servers"}) {
    written.push_back(base + "-" + k + ".svg");
  }
  return written;
}

}  // namespace aloft::fleetsim
