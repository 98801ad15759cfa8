using Shim.Os.Mounting;
namespace Shim.Os.Tests;

public sealed class IdMappingTests
{
    [Fact]
    public void A_list_of_mappings_parses_and_prints_as_proc_map_lines()
    {
        var maps = IdMapping.ParseList("0:200000:1000,1000:300000:64536");

        Assert.Equal([new IdMapping(0, 200000, 1000), new IdMapping(1000, 300000, 64536)], maps);
        Assert.Equal("0 200000 1000\n1000 300000 64536\n", IdMapping.ToProcFormat(maps));
    }

    [Theory]
    [InlineData("0:200000", "mapping \"0:200000\" is not container-id:host-id:size")]
    [InlineData("0:1:2:3", "is not container-id:host-id:size")]
    [InlineData("", "mapping \"\" is not container-id:host-id:size")]
    [InlineData("x:200000:65536", "container id \"x\" is not a non-negative integer")]
    [InlineData("0:-1:65536", "host id \"-1\" is not a non-negative integer")]
    [InlineData("0:1: 5", "size \" 5\" is not a non-negative integer")]
    [InlineData("0:1:0", "has a size of 0")]
    [InlineData("0:4294967295:2", "runs past the last id")]
    [InlineData("0:1:1,", "mapping \"\" is not")]
    public void A_mapping_that_does_not_parse_is_refused_with_the_part_at_fault(string value, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => IdMapping.ParseList(value));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }
}
