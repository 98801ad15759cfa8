using Shim.Core.Cli;

namespace Shim.Core.Tests.Cli;

public class ServerBoundSettingsTests
{
    [Theory]
    [InlineData("1", 1)]
    [InlineData("4", 4)]
    [InlineData("256", 256)]
    [InlineData("65536", 65536)]
    public void A_positive_whole_number_sets_the_bound(string value, int expected)
    {
        Assert.Equal(expected, ServerBoundSettings.ParseCount(value, out string? problem));
        Assert.Null(problem);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Unset_gives_the_default_without_complaint(string? value)
    {
        Assert.Null(ServerBoundSettings.ParseCount(value, out string? problem));
        Assert.Null(problem);
    }

    [Theory]
    [InlineData("many", "not a whole number")]
    [InlineData("2.5", "not a whole number")]
    [InlineData("-3", "not a whole number")]
    [InlineData(" 8", "not a whole number")]
    [InlineData("99999999999", "not a whole number")]
    [InlineData("0", "under 1")]
    [InlineData("65537", "over 65536")]
    public void An_unusable_count_is_ignored_with_the_reason(string value, string reason)
    {
        Assert.Null(ServerBoundSettings.ParseCount(value, out string? problem));
        Assert.Equal(reason, problem);
    }

    [Fact]
    public void The_frame_timeout_is_read_in_seconds_like_the_runc_watchdog()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(1500), ServerBoundSettings.ParseSeconds("1.5", out string? problem));
        Assert.Null(problem);
        Assert.Null(ServerBoundSettings.ParseSeconds("0", out problem));
        Assert.NotNull(problem);
    }
}
