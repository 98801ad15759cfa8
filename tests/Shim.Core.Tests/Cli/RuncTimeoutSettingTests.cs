using Shim.Core.Cli;

namespace Shim.Core.Tests.Cli;

public class RuncTimeoutSettingTests
{
    [Theory]
    [InlineData("2", 2000)]
    [InlineData("120", 120_000)]
    [InlineData("0.5", 500)]
    [InlineData("1.25", 1250)]
    public void Seconds_with_or_without_decimals_set_the_watchdog(string value, int milliseconds)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), RuncTimeoutSetting.Parse(value, out string? problem));
        Assert.Null(problem);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Unset_gives_no_timeout_and_no_complaint(string? value)
    {
        Assert.Null(RuncTimeoutSetting.Parse(value, out string? problem));
        Assert.Null(problem);
    }

    [Theory]
    [InlineData("abc", "not a number")]
    [InlineData("2s", "not a number")]
    [InlineData("-1", "not a number")]
    [InlineData(" 2", "not a number")]
    [InlineData("1e3", "not a number")]
    [InlineData("2,5", "not a number")]
    [InlineData("0", "under a millisecond")]
    [InlineData("0.0001", "under a millisecond")]
    [InlineData("9999999", "over 2147484 s")]
    public void An_unusable_value_is_ignored_with_the_reason(string value, string reason)
    {
        Assert.Null(RuncTimeoutSetting.Parse(value, out string? problem));
        Assert.NotNull(problem);
        Assert.StartsWith(reason, problem, StringComparison.Ordinal);
    }
}
