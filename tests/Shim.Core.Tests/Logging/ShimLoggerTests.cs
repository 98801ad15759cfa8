using System.Text;
using Shim.Core.Logging;

namespace Shim.Core.Tests.Logging;

public sealed class ShimLoggerTests
{
    [Fact]
    public void Lines_below_the_level_are_skipped_and_each_line_carries_its_fields_and_the_common_ones()
    {
        using var sink = new MemoryStream();
        var log = new ShimLogger(sink, LogLevel.Info, "namespace=k8s.io");

        log.Debug("not shown");
        log.Warn("runc said \"no\"", ShimLog.Field("id", "c 1"));

        string line = Encoding.UTF8.GetString(sink.ToArray());
        Assert.DoesNotContain("not shown", line, StringComparison.Ordinal);
        Assert.Matches("""^time="[0-9T:.\-]+Z" level=warning msg="runc said \\"no\\"" id="c 1" namespace=k8s.io\n$""", line);
        Assert.False(log.DebugEnabled);
    }

    [Fact]
    public void The_discarding_log_writes_nothing_and_says_debug_is_off()
    {
        ShimLogger.Discard.Error("lost on purpose");
        Assert.False(ShimLogger.Discard.DebugEnabled);
        Assert.Equal(0, ShimLogger.Discard.Dropped);
    }
}
