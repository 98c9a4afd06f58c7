/*
 * The testbed's JobWrapper (testbed/README.md): the contract of JAliEn's alien.site.JobWrapper
 * (github.com/alisw/jalien src/alien/site/JobWrapper.java) inside the job container. It reads the
 * job description and the token from stdin ("jdl <base64>", "token <t>", "end"), runs the payload
 * in /workdir with its output in /workdir/stdout, and writes status lines ("status RUNNING",
 * "status DONE" / "status ERROR_E") and "exit <code>" to stdout for the JobAgent.
 */
package alien.site;

import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

public class JobWrapper {
  public static void main(String[] args) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String jdl = null, token = null;
    for (String l; (l = in.readLine()) != null && !l.equals("end"); ) {
      if (l.startsWith("jdl ")) jdl = new String(Base64.getDecoder().decode(l.substring(4).trim()), StandardCharsets.UTF_8);
      else if (l.startsWith("token ")) token = l.substring(6).trim();
    }
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
    if (jdl == null || token == null || token.isEmpty()) { out.println("status ERROR_IB"); out.println("exit 3"); System.err.println("JobWrapper: no job description or token on stdin"); return; }
    String payload = field(jdl, "Executable");
    if (field(jdl, "TestbedFault").equals("wrapper-dies")) { System.err.println("JobWrapper: fault injected: dying"); Runtime.getRuntime().halt(137); }
    out.println("status STARTED");
    ProcessBuilder pb = new ProcessBuilder("/bin/bash", "-c", payload);
    pb.directory(new File("/workdir"));
    pb.redirectErrorStream(true);
    pb.redirectOutput(new File("/workdir/stdout"));
    pb.environment().put("ALIEN_JOB_TOKEN_PRESENT", "1");
    Process p = pb.start();
    out.println("status RUNNING");
    int code = p.waitFor();
    out.println("exit " + code);
    out.println(code == 0 ? "status DONE" : "status ERROR_E");
  }

  /** A JDL field `Name = "value";` (the value base64-encoded by the testbed's task queue). */
  static String field(String jdl, String name) {
    for (String l : jdl.split("\n")) {
      String t = l.trim();
      if (t.startsWith(name + " = \"") && t.endsWith("\";")) return new String(Base64.getDecoder().decode(t.substring(name.length() + 4, t.length() - 2)), StandardCharsets.UTF_8);
    }
    return "";
  }
}
