using Shim.Core.Cli;

namespace Shim.Core.Tests.Cli;

public class ShimArgsTests
{
    [Fact]
    public void Containerd_start_command_line_parses_with_the_action_last()
    {
        var a = ShimArgs.Parse(["-namespace", "ns1", "-address", "/run/c.sock", "-publish-binary", "/usr/bin/containerd", "-id", "c1", "-debug", "start"]);
        Assert.Equal(("ns1", "/run/c.sock", "c1", true, "start"), (a.Namespace, a.Address, a.Id, a.Debug, a.Action));
        Assert.Equal("/usr/bin/containerd", a.PublishBinary);
    }

    [Fact]
    public void Equals_form_and_double_dash_are_accepted_as_in_go()
    {
        var a = ShimArgs.Parse(["--namespace=ns1", "-id=c1", "-bundle", "/b", "delete"]);
        Assert.Equal(("ns1", "c1", "/b", "delete"), (a.Namespace, a.Id, a.Bundle, a.Action));
    }

    [Fact]
    public void No_action_means_serve_mode()
    {
        Assert.Equal("", ShimArgs.Parse(["-namespace", "n", "-id", "c"]).Action);
    }

    [Fact]
    public void Version_flags_are_booleans()
    {
        Assert.True(ShimArgs.Parse(["-v"]).Version);
        Assert.True(ShimArgs.Parse(["-version"]).Version);
        Assert.False(ShimArgs.Parse(["-debug=false"]).Debug);
    }

    [Fact]
    public void Unknown_flag_and_missing_value_are_errors()
    {
        Assert.Contains("not defined: -bogus", Assert.Throws<ArgumentException>(() => ShimArgs.Parse(["-bogus"])).Message);
        Assert.Contains("needs an argument: -id", Assert.Throws<ArgumentException>(() => ShimArgs.Parse(["-id"])).Message);
    }
}
