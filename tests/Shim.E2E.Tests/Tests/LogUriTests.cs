using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Shim.E2E.Tests;

/// <summary>`--log-uri`: file:// appends both streams to one file; binary:// hands them to a logging program.</summary>
public sealed class LogUriTests : E2ETest
{
    private static async Task<string> WaitForContentAsync(string path, string expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        string text = "";
        while (DateTime.UtcNow < deadline)
        {
            text = File.Exists(path) ? await File.ReadAllTextAsync(path, Ct) : "";
            if (text == expected)
            {
                break;
            }
            await Task.Delay(50, Ct);
        }
        return text;
    }

    private string[] RunWithLog(string id, string uri, params string[] command)
    {
        var args = RunArgs(id, detach: false, command).ToList();
        args.InsertRange(1, ["--log-uri", uri]);
        return [.. args];
    }

    [Fact]
    public async Task A_file_uri_gets_stdout_and_stderr_appended()
    {
        string log = Path.Combine(Ctrd.Dir, "logs", "c.log");
        var r = await CtrAsync(RunWithLog("flog1", "file://" + log, "sh", "-c", "echo to-out; echo to-err >&2; exit 2"), null);
        Assert.True(r.ExitCode == 2, r.Describe());
        string text = await File.ReadAllTextAsync(log, Ct);
        Assert.Contains("to-out\n", text, StringComparison.Ordinal);
        Assert.Contains("to-err\n", text, StringComparison.Ordinal);
    }

    private static async Task<string> WriteLoggerAsync(string dir)
    {
        Directory.CreateDirectory(dir);
        string logger = Path.Combine(dir, "logger.sh");
        await File.WriteAllTextAsync(logger, """
            #!/bin/sh
            # fd 3: container stdout, fd 4: container stderr, fd 5: readiness
            out="$2"
            echo "$CONTAINER_ID $CONTAINER_NAMESPACE" > "$out.env"
            cat <&3 > "$out.stdout" &
            cat <&4 > "$out.stderr" &
            printf ready >&5
            exec 5>&-
            wait
            """.Replace("\r", "", StringComparison.Ordinal), Ct);
        File.SetUnixFileMode(logger, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return logger;
    }

    [Fact]
    public async Task A_binary_uri_runs_the_logger_with_both_streams_and_the_container_identity()
    {
        string dir = Path.Combine(Ctrd.Dir, "blog");
        string logger = await WriteLoggerAsync(dir);
        string target = Path.Combine(dir, "out");

        var r = await CtrAsync(RunWithLog("blog1", $"binary://{logger}?file={target}", "sh", "-c", "echo to-out; echo to-err >&2"), null);
        Assert.True(r.ExitCode == 0, r.Describe());
        Assert.Equal("to-out\n", await WaitForContentAsync(target + ".stdout", "to-out\n"));
        Assert.Equal("to-err\n", await WaitForContentAsync(target + ".stderr", "to-err\n"));
        Assert.Equal($"blog1 {Ns}\n", await File.ReadAllTextAsync(target + ".env", Ct));
    }

    /// <summary>
    /// What nerdctl does for `run -dt` (and compose `tty: true`): a terminal whose output goes to a
    /// binary:// logger. ctr drops --log-uri with -t, so the exec goes to the shim's socket directly.
    /// </summary>
    [Fact]
    public async Task A_terminal_with_a_binary_uri_copies_the_console_to_the_logger()
    {
        string dir = Path.Combine(Ctrd.Dir, "tlog");
        string logger = await WriteLoggerAsync(dir);
        string target = Path.Combine(dir, "out");
        (await CtrAsync(RunArgs("tlog1", detach: true, "sleep", "300"))).EnsureSuccess();
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "tlog1", Ct);
        var spec = new Any
        {
            TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process",
            Value = ByteString.CopyFromUtf8("""{"terminal":true,"user":{"uid":0,"gid":0},"args":["sh","-c","echo on-the-tty; echo also-tty >&2; exit 4"],"env":["PATH=/bin"],"cwd":"/"}"""),
        };

        string service = shim.TaskApi;
        Task<T> Call<TRequest, T>(string method, TRequest request, MessageParser<T> parser)
            where TRequest : IMessage<TRequest>
            where T : IMessage<T> =>
            shim.Client.CallAsync(service, method, request, parser, TimeSpan.FromSeconds(30), null, Ct);

        // "binary" (not binary-v2): the scheme containerd's shim copies a console to
        await Call("Exec", new ExecProcessRequest { Id = "tlog1", ExecId = "t1", Terminal = true, Stdout = $"binary://{logger}?file={target}", Spec = spec }, Empty.Parser);
        await Call("Start", new StartRequest { Id = "tlog1", ExecId = "t1" }, StartResponse.Parser);
        var waited = await Call("Wait", new WaitRequest { Id = "tlog1", ExecId = "t1" }, WaitResponse.Parser);

        Assert.Equal(4u, waited.ExitStatus);
        // both streams of a terminal are the console; its line discipline turns \n into \r\n
        Assert.Equal("on-the-tty\r\nalso-tty\r\n", await WaitForContentAsync(target + ".stdout", "on-the-tty\r\nalso-tty\r\n"));
        // only the namespace: for an exec, containerd's shim hands the logger the exec id as CONTAINER_ID, ours the container's
        Assert.EndsWith($" {Ns}\n", await File.ReadAllTextAsync(target + ".env", Ct), StringComparison.Ordinal);
        await Call("Delete", new DeleteRequest { Id = "tlog1", ExecId = "t1" }, DeleteResponse.Parser);
    }
}
