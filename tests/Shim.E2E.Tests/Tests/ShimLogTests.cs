using System.Text.RegularExpressions;

namespace Shim.E2E.Tests;

/// <summary>
/// The shim's own log (logrus text on the bundle's `log` FIFO) is copied by containerd into its
/// log. A line counts as the shim's when its top-level fields (after msg="…") carry
/// namespace=&lt;ns&gt; and runtime=&lt;runtime name&gt;, as the Go shim's logger does.
/// </summary>
public sealed partial class ShimLogTests : E2ETest
{
    [GeneratedRegex("^time=\"[^\"]*\" level=(?<level>\\w+) msg=(?:\"(?:[^\"\\\\]|\\\\.)*\"|\\S+)(?<fields>.*)$")]
    private static partial Regex LogrusLine();

    [Fact]
    public async Task The_shims_log_lines_reach_the_containerd_log()
    {
        var r = await RunAsync("log1", "/bin/echo", "hi");
        Assert.True(r.ExitCode == 0, r.Describe());

        var lines = await ShimLinesAsync(_ => true);

        Assert.NotEmpty(lines);
    }

    [Fact]
    public async Task The_shim_logs_at_debug_level_when_containerd_runs_at_debug()
    {
        // the Go shim puts namespace/runtime fields on its info lines only, so its debug lines
        // cannot be told from containerd's own; this is a contract of ours
        if (Prereqs.IsStockRuntime) { Assert.Skip("the stock shim's debug lines carry no runtime= field"); }
        var r = await RunAsync("log2", "/bin/echo", "hi");
        Assert.True(r.ExitCode == 0, r.Describe());

        var lines = await ShimLinesAsync(level => level == "debug");

        Assert.NotEmpty(lines);
    }

    private async Task<List<string>> ShimLinesAsync(Func<string, bool> level)
    {
        // containerd copies the FIFO asynchronously: allow a short moment
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            var lines = Ctrd.ReadLog().Split('\n').Where(l => IsShimLine(l, level)).ToList();
            if (lines.Count > 0 || DateTime.UtcNow > until)
            {
                lines.ForEach(l => Log("shim: " + l));
                return lines;
            }
            await Task.Delay(100, Ct);
        }
    }

    private bool IsShimLine(string line, Func<string, bool> level)
    {
        var m = LogrusLine().Match(line);
        if (!m.Success || !level(m.Groups["level"].Value)) { return false; }
        var fields = " " + m.Groups["fields"].Value + " ";
        return fields.Contains($" namespace={Ns} ", StringComparison.Ordinal)
            && fields.Contains($" runtime={Runtime} ", StringComparison.Ordinal);
    }
}
