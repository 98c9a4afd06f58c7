/*
 * The testbed's JobAgent (testbed/README.md): the contract of JAliEn's alien.site.JobRunner /
 * JobAgent (github.com/alisw/jalien src/alien/site/JobAgent.java) without central services. Started
 * by the startup script `gridforge render jobagent-startup` renders, on the 32-bit JVM from
 * /cvmfs/<repo>/java/JDKs/i686/jdk-latest. It takes one job from the task queue ($TESTBED_QUEUE),
 * makes the job directory, starts the JobWrapper in the job container through an unprivileged
 * container runtime (Apptainer from containers/bin/apptainer/current when the repository has one,
 * else bubblewrap) with /cvmfs and the job directory at /workdir bound, sends the job description and
 * token down the wrapper's stdin, reads status lines and the exit code from its stdout, and reports
 * the result. Java 8 language and API, so every JVM the repository may carry runs it.
 */
package alien.site;

import java.io.*;
import java.net.HttpURLConnection;
import java.net.URL;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.TimeUnit;

public class JobRunner {
  static String queue;
  static String slurmJob;

  public static void main(String[] args) throws Exception {
    queue = System.getenv("TESTBED_QUEUE");
    slurmJob = env("SLURM_JOB_ID", "none");
    if (queue == null) die("agent", "TESTBED_QUEUE is not set: the startup script must export the task queue URL");
    String host = java.net.InetAddress.getLocalHost().getHostName();
    String vm = System.getProperty("sun.arch.data.model") + "-bit " + System.getProperty("java.vm.name") + " " + System.getProperty("java.version");
    String jalien = env("JALIEN_VERSION", "");
    Properties job = getJob(host, vm, jalien);
    if (job == null) { System.out.println("JobAgent: no job for me, exiting"); return; }
    String id = job.getProperty("id");
    System.out.println("JobAgent: took job " + id + " on " + host + " (" + vm + ", JAliEn " + jalien + ")");
    int ttl = Integer.parseInt(job.getProperty("ttl", "60"));
    Path workdir = Paths.get(env("HOME", "/tmp"), "job-" + id).toAbsolutePath();
    Files.createDirectories(workdir);
    post("status", "id=" + enc(id) + "&state=RUNNING&host=" + enc(host));

    String cvmfs = env("TESTBED_CVMFS", "/cvmfs");
    String image = job.getProperty("container");
    if (!Files.isDirectory(Paths.get(image))) { result(id, 1, "container", "container image " + image + " is not there (CVMFS missing or without it)", workdir); return; }
    if (!Files.isDirectory(Paths.get(image, "workdir"))) { result(id, 1, "container", "container image " + image + " has no /workdir to bind the job directory to", workdir); return; }

    String java = System.getProperty("java.home") + "/bin/java";
    String jar = JobRunner.class.getProtectionDomain().getCodeSource().getLocation().getPath();
    List<String> cmd = new ArrayList<>();
    String apptainer = job.getProperty("apptainer", "");
    if (!apptainer.isEmpty() && Files.isExecutable(Paths.get(apptainer))) {
      cmd.addAll(Arrays.asList(apptainer, "exec", "--contain", "--ipc", "--pid", "-B", cvmfs + ":" + cvmfs, "-B", workdir + ":/workdir", "--pwd", "/workdir", image));
    } else {
      cmd.addAll(Arrays.asList("bwrap", "--ro-bind", image, "/", "--ro-bind", cvmfs, cvmfs, "--bind", workdir.toString(), "/workdir",
          "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--chdir", "/workdir",
          "--setenv", "HOME", "/workdir", "--setenv", "JALIEN_VERSION", jalien, "--setenv", "JALIEN_ROOT", env("JALIEN_ROOT", ""),
          "--setenv", "PATH", System.getProperty("java.home") + "/bin:/usr/local/bin:/usr/bin:/bin", "--"));
    }
    cmd.addAll(Arrays.asList(java, "-Xmx32M", "-cp", jar, "alien.site.JobWrapper"));
    String runtime = cmd.get(0);
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.redirectError(workdir.resolve("wrapper.stderr").toFile());
    Process p;
    try { p = pb.start(); } catch (IOException e) { result(id, 1, "container", "cannot start " + runtime + ": " + e.getMessage(), workdir); return; }
    try (Writer w = new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8)) {
      w.write("jdl " + job.getProperty("jdl") + "\n");
      w.write("token " + job.getProperty("token") + "\n");
      w.write("end\n");
    } catch (IOException e) { /* the wrapper died before reading: reported below */ }
    final List<String> lines = Collections.synchronizedList(new ArrayList<String>());
    final BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    Thread reader = new Thread(() -> {
      try { for (String l; (l = r.readLine()) != null; ) { lines.add(l); System.out.println("JobWrapper: " + l); if (l.startsWith("status ")) post("status", "id=" + enc(id) + "&state=" + enc(l.substring(7)) + "&host=" + enc(host)); } } catch (IOException e) { /* closed */ }
    });
    reader.start();
    if (!p.waitFor(ttl, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      result(id, 1, "wrapper", "JobWrapper did not finish within the job's TTL of " + ttl + " s; killed", workdir);
      return;
    }
    reader.join(5000);
    Integer exit = null;
    synchronized (lines) { for (String l : lines) if (l.startsWith("exit ")) exit = Integer.valueOf(l.substring(5).trim()); }
    if (exit == null) {
      result(id, 1, "wrapper", "JobWrapper (" + runtime + ") died with exit code " + p.exitValue() + " without reporting the payload's exit code", workdir);
      return;
    }
    result(id, exit, exit == 0 ? "done" : "payload", exit == 0 ? "payload exit 0" : "payload exit " + exit, workdir);
  }

  static String env(String k, String d) { String v = System.getenv(k); return v == null || v.isEmpty() ? d : v; }

  static String enc(String s) { try { return URLEncoder.encode(s, "UTF-8"); } catch (UnsupportedEncodingException e) { throw new RuntimeException(e); } }

  static void die(String step, String msg) { System.err.println("JobAgent: " + step + ": " + msg); System.exit(1); }

  static Properties getJob(String host, String vm, String jalien) throws IOException {
    HttpURLConnection c = (HttpURLConnection) new URL(queue + "/job?slurm=" + enc(slurmJob) + "&host=" + enc(host) + "&vm=" + enc(vm) + "&jalien=" + enc(jalien)).openConnection();
    c.setConnectTimeout(5000);
    c.setReadTimeout(10000);
    if (c.getResponseCode() == 204) return null;
    if (c.getResponseCode() != 200) die("agent", "task queue answered " + c.getResponseCode());
    Properties p = new Properties();
    try (InputStream in = c.getInputStream()) { p.load(in); }
    return p;
  }

  static void post(String what, String query) {
    try {
      HttpURLConnection c = (HttpURLConnection) new URL(queue + "/" + what + "?slurm=" + enc(slurmJob) + "&" + query).openConnection();
      c.setRequestMethod("POST");
      c.setConnectTimeout(5000);
      c.setReadTimeout(10000);
      c.getResponseCode();
    } catch (IOException e) {
      System.err.println("JobAgent: cannot reach the task queue: " + e);
    }
  }

  static String tail(Path f, int max) {
    try { byte[] b = Files.readAllBytes(f); int from = Math.max(0, b.length - max); return new String(b, from, b.length - from, StandardCharsets.UTF_8); } catch (IOException e) { return ""; }
  }

  static void result(String id, int exit, String step, String reason, Path workdir) throws IOException {
    String out = tail(workdir.resolve("stdout"), 8000);
    String err = tail(workdir.resolve("wrapper.stderr"), 2000);
    HttpURLConnection c = (HttpURLConnection) new URL(queue + "/result?slurm=" + enc(slurmJob) + "&id=" + enc(id) + "&exit=" + exit + "&step=" + enc(step) + "&reason=" + enc(reason)).openConnection();
    c.setRequestMethod("POST");
    c.setDoOutput(true);
    c.setConnectTimeout(5000);
    try (OutputStream o = c.getOutputStream()) { o.write((out + (err.isEmpty() ? "" : "\n--- wrapper stderr ---\n" + err)).getBytes(StandardCharsets.UTF_8)); }
    c.getResponseCode();
    System.out.println("JobAgent: job " + id + " " + step + ": " + reason);
    if (exit != 0) System.exit(exit > 0 && exit < 256 ? exit : 1);
  }
}
