using System.Text;
using System.Text.Json;
using Containerd.Task.V2;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Win32.SafeHandles;
using Shim.Protos;

namespace Shim.E2E.Tests;

/// <summary>
/// A shim started with a soft RLIMIT_NOFILE of 1024 (what containerd 2.x under its systemd unit
/// hands its shims; here prlimit(1) in front of the shim, the hard limit left as it is) serves 300 live execs with stdin, stdout
/// and stderr (several descriptors each), ends them cleanly, and hands runc and the container
/// processes the limit it was started with, as containerd's shim does.
/// </summary>
public sealed class DescriptorLimitTests : E2ETest, IAsyncLifetime
{
    private const string LimitedRuntime = "io.containerd.rcsnofile.v2";
    private const int Execs = 300;
    private const ulong Soft = 1024;

    private RuncWrapper? _runc;

    // every runc call records the limit it was started with; made right before the daemon starts
    private protected override ContainerdOptions DaemonOptions
    {
        get
        {
            if (_runc is null)
            {
                _runc = RuncWrapper.Create(ContainerdLines.Current);
                _runc.Before("""echo "$verb $(ulimit -Sn) $(ulimit -Hn)" >> "$dir/record" """);
            }
            return new(PathFirst: _runc.Dir);
        }
    }
    // descriptors a shim may keep after the execs are gone (containerd's keeps 14 more, its runtime's): far below one per exec
    private const int Leeway = Execs / 10;
    private static readonly string[] PathOnly = ["PATH=/bin"];

    [Fact]
    public async Task A_shim_started_with_1024_open_files_serves_300_execs_with_stdio_and_they_keep_that_limit()
    {
        var runtime = WrappedShim.Install(Ctrd, LimitedRuntime, new Dictionary<string, string>(), ["/usr/bin/prlimit", $"--nofile={Soft}:"]);
        (await CtrAsync(RunThrough(runtime, "nf", detach: true, "sleep", "3000"))).EnsureSuccess();
        int shim = ProcFs.ShimPids(Ctrd.Socket, "nf").Single();
        // the hard limit stays the daemon's (raising it needs CAP_SYS_RESOURCE); containerd's shim raises
        // its soft limit to it at once, ours once it holds three quarters of the soft limit
        var started = (Soft, OpenFilesLimit(shim).Hard);
        Assert.True(started.Hard > Execs * 10, $"the test needs a hard limit above what the shim will hold: {started}");
        if (!Prereqs.IsStockRuntime)
        {
            Assert.Equal(started, OpenFilesLimit(shim));
        }
        int before = OpenFds(shim);
        await using var client = await ShimClient.ConnectAsync(Ctrd, Ns, "nf", Ct);
        string dir = TempDir("rcs-nofile-");
        var execs = new List<ExecStdio>(Execs);
        try
        {
            for (int i = 0; i < Execs; i++)
            {
                var stdio = ExecStdio.Create(Path.Combine(dir, $"e{i}"));
                execs.Add(stdio);
                await client.CallAsync("Exec", new ExecProcessRequest
                {
                    Id = "nf",
                    ExecId = $"e{i}",
                    Stdin = stdio.Stdin,
                    Stdout = stdio.Stdout,
                    Stderr = stdio.Stderr,
                    Spec = Spec("sh", "-c", "echo up; echo err >&2; read line; echo got $line"),
                }, Empty.Parser, Ct);
                stdio.Pid = (int)(await client.CallAsync("Start", new StartRequest { Id = "nf", ExecId = $"e{i}" }, StartResponse.Parser, Ct)).Pid;
                Assert.Equal("up\n", stdio.ReadStdoutLine());
            }
            int busy = OpenFds(shim);
            Log($"shim fds: {before} before, {busy} with {Execs} execs; limits now {OpenFilesLimit(shim)}");
            Assert.True(busy > (int)Soft, $"{Execs} execs with stdio should take the shim past {Soft} descriptors, it holds {busy}");
            // what the shim starts keeps the limit the shim was started with: every runc call, and the
            // container's processes where runc passes its own on (runc 1.1 built with Go before 1.21
            // hands them the limit Go raised it to, whichever shim started it)
            var calls = _runc!.Record();
            Assert.Equal(Execs + 2, calls.Length);   // create, start, an exec each
            Assert.All(calls, call => Assert.EndsWith($" {Soft} {started.Hard}", call, StringComparison.Ordinal));
            if (await RuncPassesItsLimitOnAsync())
            {
                Assert.Equal(started, OpenFilesLimit(execs[^1].Pid));
            }
            else
            {
                Log($"this runc hands its processes {OpenFilesLimit(execs[^1].Pid)}");
            }

            foreach (var (stdio, i) in execs.Select((s, i) => (s, i)))
            {
                stdio.WriteStdin($"bye{i}\n");
            }
            foreach (var (stdio, i) in execs.Select((s, i) => (s, i)))
            {
                var wait = await client.CallAsync("Wait", new WaitRequest { Id = "nf", ExecId = $"e{i}" }, WaitResponse.Parser, Ct);
                Assert.Equal(0u, wait.ExitStatus);
                Assert.Equal($"got bye{i}\n", stdio.ReadStdoutLine());
                stdio.Dispose();   // the client closes its ends once the exec is done, as containerd's cio does
                await client.CallAsync("Delete", new DeleteRequest { Id = "nf", ExecId = $"e{i}" }, DeleteResponse.Parser, Ct);
            }
            int after = OpenFds(shim);
            for (var until = DateTime.UtcNow.AddSeconds(10); after > before + Leeway && DateTime.UtcNow < until; after = OpenFds(shim))
            {
                await Task.Delay(100, Ct);   // containerd's shim closes a stdin copy when it sees the client's close
            }
            Log($"shim fds after the deletes: {after}");
            Assert.True(after <= before + Leeway, $"the shim holds {after} descriptors after the execs were deleted, {before} before them");
        }
        finally
        {
            foreach (var stdio in execs)
            {
                stdio.Dispose();
            }
        }
        (await CtrAsync("task", "kill", "-s", "SIGKILL", "nf")).EnsureSuccess();
        for (var until = DateTime.UtcNow.AddSeconds(30); (await CtrAsync("task", "delete", "nf")).ExitCode != 0;)
        {
            Assert.True(DateTime.UtcNow < until, "the container could not be deleted after its kill");
            await Task.Delay(100, Ct);
        }
    }

    [Fact]
    public async Task The_shim_binary_as_exec_with_nofile_sets_the_limit_and_runs_the_program_or_says_why_it_cannot()
    {
        OursOnly("the way our shim starts runc once it raised its own limit");
        string shim = Path.Combine(Prereqs.DistDir, Prereqs.ShimBinaryName(Prereqs.Runtime));

        var ran = await Command.RunAsync(shim, ["exec-with-nofile", "100", "200", "/bin/sh", "sh", "-c", "ulimit -Sn; ulimit -Hn"], ct: Ct);
        Assert.True(ran.ExitCode == 0 && ran.Stdout == "100\n200\n", ran.Describe());

        var missing = await Command.RunAsync(shim, ["exec-with-nofile", "100", "200", "/nonexistent/runc", "runc", "create"], ct: Ct);
        Assert.True(missing.ExitCode == 127, missing.Describe());
        Assert.Contains("running /nonexistent/runc failed", missing.Stderr, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", missing.Stderr, StringComparison.Ordinal);
    }

    private static Any Spec(params string[] args) => TypeUrls.PackRaw(TypeUrls.OciProcess, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["user"] = new Dictionary<string, int> { ["uid"] = 0, ["gid"] = 0 },
        ["args"] = args,
        ["env"] = PathOnly,
        ["cwd"] = "/",
    })));

    private static async Task<bool> RuncPassesItsLimitOnAsync()
    {
        var runc = ContainerdLines.Current.RuncPath ?? Prereqs.Which("runc") ?? "runc";
        var version = (await Command.RunAsync(runc, ["--version"], ct: Ct)).EnsureSuccess().Stdout;
        var match = System.Text.RegularExpressions.Regex.Match(version, @"runc version (\d+)\.(\d+)");
        return match.Success && (int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)) is ( > 1, _) or (1, >= 2);
    }

    private static (ulong Soft, ulong Hard) OpenFilesLimit(int pid)
    {
        var fields = File.ReadLines($"/proc/{pid}/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (ulong.Parse(fields[3], System.Globalization.CultureInfo.InvariantCulture), ulong.Parse(fields[4], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static int OpenFds(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;

    /// <summary>An exec's three FIFOs, opened read-write by the test (such an open never waits for the other side).</summary>
    // the wrapper's directory (its before.sh and record) goes with the daemon, as in the other wrapper users
    public new async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _runc?.Dispose();
    }

    private sealed class ExecStdio : IDisposable
    {
        private readonly FileStream _stdin, _stdout, _stderr;

        private ExecStdio(string dir)
        {
            Directory.CreateDirectory(dir);
            Stdin = Path.Combine(dir, "stdin");
            Stdout = Path.Combine(dir, "stdout");
            Stderr = Path.Combine(dir, "stderr");
            _stdin = OpenFifo(Stdin);
            _stdout = OpenFifo(Stdout);
            _stderr = OpenFifo(Stderr);
        }

        public string Stdin { get; }

        public string Stdout { get; }

        public string Stderr { get; }

        public int Pid { get; set; }

        public static ExecStdio Create(string dir) => new(dir);

        public string ReadStdoutLine()
        {
            var line = new StringBuilder();
            var one = new byte[1];
            while (_stdout.Read(one, 0, 1) == 1)
            {
                line.Append((char)one[0]);
                if (one[0] == '\n')
                {
                    break;
                }
            }
            return line.ToString();
        }

        public void WriteStdin(string text) => _stdin.Write(Encoding.ASCII.GetBytes(text));

        public void Dispose()
        {
            // idempotent: the test closes an exec's ends when it is done, the finally block every one left
            _stdin.Dispose();
            _stdout.Dispose();
            _stderr.Dispose();
        }

        private static FileStream OpenFifo(string path)
        {
            if (Mkfifo(path, 0x180) != 0)
            {
                throw new IOException($"mkfifo {path} failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
            }
#pragma warning disable CA2000 // the stream owns the handle from here on
            SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
#pragma warning restore CA2000
            return new FileStream(handle, FileAccess.ReadWrite, bufferSize: 0);
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
        [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
        private static extern int Mkfifo(string path, int mode);
    }
}
