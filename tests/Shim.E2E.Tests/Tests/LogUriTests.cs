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

    [Fact]
    public async Task A_binary_uri_runs_the_logger_with_both_streams_and_the_container_identity()
    {
        string dir = Path.Combine(Ctrd.Dir, "blog");
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
        string target = Path.Combine(dir, "out");

        var r = await CtrAsync(RunWithLog("blog1", $"binary://{logger}?file={target}", "sh", "-c", "echo to-out; echo to-err >&2"), null);
        Assert.True(r.ExitCode == 0, r.Describe());
        Assert.Equal("to-out\n", await WaitForContentAsync(target + ".stdout", "to-out\n"));
        Assert.Equal("to-err\n", await WaitForContentAsync(target + ".stderr", "to-err\n"));
        Assert.Equal($"blog1 {Ns}\n", await File.ReadAllTextAsync(target + ".env", Ct));
    }
}
