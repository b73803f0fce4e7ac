// Simulation model of the ECP5 DP16KD block RAM, for gate-level simulation of the flow's netlists
// (tools/gatesim.py). Yosys's ECP5 cell library has only a blackbox of this primitive.
//
// Written for this project from the primitive's documented behaviour and from the conventions of Yosys's ECP5 block
// RAM mapping (how it places memory words in INITVAL_xx and data on the pins): 1,024 words of 18 bits, INITVAL_xx
// holding words 16*xx .. 16*xx+15 in 20-bit slots (the low 18 bits used). A port of DATA_WIDTH w addresses
//   w = 18: word AD[13:4]; AD[1:0] enable the writes of bits [8:0] and [17:9]
//   w = 9:  half-word AD[13:3] (bits [8:0] or [17:9] of word AD[13:4])
//   w = 4, 2, 1: the 16 data bits of each word (bits [7:0] and [16:9]; the ninth bit of each half is parity) as
//           16,384 bits, from bit AD[13:2]*4 / AD[13:1]*2 / AD[13:0]
//   w = 36: port A writes, port B reads word pairs AD[13:5] (words 2k and 2k+1 on the A and the B data pins); the
//           write enables its four 9-bit quarters with AD[3:0]
// A read latches on the port's clock edge when CE is high and the chip selects match CSDECODE; while the port writes,
// WRITEMODE decides what it shows (NORMAL: unchanged, WRITETHROUGH: the new data, READBEFOREWRITE: the old).
// REGMODE "OUTREG" adds the output register, loaded from that latch on the edges where OCE (through OCExMUX) is high.
// RST clears the latch and the output register (RESETMODE ASYNC: at once; SYNC: on the clock edge).
// Pin multiplexers other than the clocks' and OCE's inversion are not modelled: a netlist that sets one fails at time 0.
`timescale 1ns / 1ps
module DP16KD(
  input  DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input  ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input  CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
  input  DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input  ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input  CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter GSR = "ENABLED";
  parameter INIT_DATA = "STATIC";
  parameter WID = 0;
  parameter DIA0MUX = "DIA0";
  parameter DIA1MUX = "DIA1";
  parameter DIA2MUX = "DIA2";
  parameter DIA3MUX = "DIA3";
  parameter DIA4MUX = "DIA4";
  parameter DIA5MUX = "DIA5";
  parameter DIA6MUX = "DIA6";
  parameter DIA7MUX = "DIA7";
  parameter DIA8MUX = "DIA8";
  parameter DIA9MUX = "DIA9";
  parameter DIA10MUX = "DIA10";
  parameter DIA11MUX = "DIA11";
  parameter DIA12MUX = "DIA12";
  parameter DIA13MUX = "DIA13";
  parameter DIA14MUX = "DIA14";
  parameter DIA15MUX = "DIA15";
  parameter DIA16MUX = "DIA16";
  parameter DIA17MUX = "DIA17";
  parameter DOA0MUX = "DOA0";
  parameter DOA1MUX = "DOA1";
  parameter DOA2MUX = "DOA2";
  parameter DOA3MUX = "DOA3";
  parameter DOA4MUX = "DOA4";
  parameter DOA5MUX = "DOA5";
  parameter DOA6MUX = "DOA6";
  parameter DOA7MUX = "DOA7";
  parameter DOA8MUX = "DOA8";
  parameter DOA9MUX = "DOA9";
  parameter DOA10MUX = "DOA10";
  parameter DOA11MUX = "DOA11";
  parameter DOA12MUX = "DOA12";
  parameter DOA13MUX = "DOA13";
  parameter DOA14MUX = "DOA14";
  parameter DOA15MUX = "DOA15";
  parameter DOA16MUX = "DOA16";
  parameter DOA17MUX = "DOA17";
  parameter ADA0MUX = "ADA0";
  parameter ADA1MUX = "ADA1";
  parameter ADA2MUX = "ADA2";
  parameter ADA3MUX = "ADA3";
  parameter ADA4MUX = "ADA4";
  parameter ADA5MUX = "ADA5";
  parameter ADA6MUX = "ADA6";
  parameter ADA7MUX = "ADA7";
  parameter ADA8MUX = "ADA8";
  parameter ADA9MUX = "ADA9";
  parameter ADA10MUX = "ADA10";
  parameter ADA11MUX = "ADA11";
  parameter ADA12MUX = "ADA12";
  parameter ADA13MUX = "ADA13";
  parameter CEAMUX = "CEA";
  parameter OCEAMUX = "OCEA";
  parameter CLKAMUX = "CLKA";
  parameter WEAMUX = "WEA";
  parameter RSTAMUX = "RSTA";
  parameter CSA0MUX = "CSA0";
  parameter CSA1MUX = "CSA1";
  parameter CSA2MUX = "CSA2";
  parameter DIB0MUX = "DIB0";
  parameter DIB1MUX = "DIB1";
  parameter DIB2MUX = "DIB2";
  parameter DIB3MUX = "DIB3";
  parameter DIB4MUX = "DIB4";
  parameter DIB5MUX = "DIB5";
  parameter DIB6MUX = "DIB6";
  parameter DIB7MUX = "DIB7";
  parameter DIB8MUX = "DIB8";
  parameter DIB9MUX = "DIB9";
  parameter DIB10MUX = "DIB10";
  parameter DIB11MUX = "DIB11";
  parameter DIB12MUX = "DIB12";
  parameter DIB13MUX = "DIB13";
  parameter DIB14MUX = "DIB14";
  parameter DIB15MUX = "DIB15";
  parameter DIB16MUX = "DIB16";
  parameter DIB17MUX = "DIB17";
  parameter DOB0MUX = "DOB0";
  parameter DOB1MUX = "DOB1";
  parameter DOB2MUX = "DOB2";
  parameter DOB3MUX = "DOB3";
  parameter DOB4MUX = "DOB4";
  parameter DOB5MUX = "DOB5";
  parameter DOB6MUX = "DOB6";
  parameter DOB7MUX = "DOB7";
  parameter DOB8MUX = "DOB8";
  parameter DOB9MUX = "DOB9";
  parameter DOB10MUX = "DOB10";
  parameter DOB11MUX = "DOB11";
  parameter DOB12MUX = "DOB12";
  parameter DOB13MUX = "DOB13";
  parameter DOB14MUX = "DOB14";
  parameter DOB15MUX = "DOB15";
  parameter DOB16MUX = "DOB16";
  parameter DOB17MUX = "DOB17";
  parameter ADB0MUX = "ADB0";
  parameter ADB1MUX = "ADB1";
  parameter ADB2MUX = "ADB2";
  parameter ADB3MUX = "ADB3";
  parameter ADB4MUX = "ADB4";
  parameter ADB5MUX = "ADB5";
  parameter ADB6MUX = "ADB6";
  parameter ADB7MUX = "ADB7";
  parameter ADB8MUX = "ADB8";
  parameter ADB9MUX = "ADB9";
  parameter ADB10MUX = "ADB10";
  parameter ADB11MUX = "ADB11";
  parameter ADB12MUX = "ADB12";
  parameter ADB13MUX = "ADB13";
  parameter CEBMUX = "CEB";
  parameter OCEBMUX = "OCEB";
  parameter CLKBMUX = "CLKB";
  parameter WEBMUX = "WEB";
  parameter RSTBMUX = "RSTB";
  parameter CSB0MUX = "CSB0";
  parameter CSB1MUX = "CSB1";
  parameter CSB2MUX = "CSB2";
  parameter [319:0] INITVAL_00 = 320'h0;
  parameter [319:0] INITVAL_01 = 320'h0;
  parameter [319:0] INITVAL_02 = 320'h0;
  parameter [319:0] INITVAL_03 = 320'h0;
  parameter [319:0] INITVAL_04 = 320'h0;
  parameter [319:0] INITVAL_05 = 320'h0;
  parameter [319:0] INITVAL_06 = 320'h0;
  parameter [319:0] INITVAL_07 = 320'h0;
  parameter [319:0] INITVAL_08 = 320'h0;
  parameter [319:0] INITVAL_09 = 320'h0;
  parameter [319:0] INITVAL_0A = 320'h0;
  parameter [319:0] INITVAL_0B = 320'h0;
  parameter [319:0] INITVAL_0C = 320'h0;
  parameter [319:0] INITVAL_0D = 320'h0;
  parameter [319:0] INITVAL_0E = 320'h0;
  parameter [319:0] INITVAL_0F = 320'h0;
  parameter [319:0] INITVAL_10 = 320'h0;
  parameter [319:0] INITVAL_11 = 320'h0;
  parameter [319:0] INITVAL_12 = 320'h0;
  parameter [319:0] INITVAL_13 = 320'h0;
  parameter [319:0] INITVAL_14 = 320'h0;
  parameter [319:0] INITVAL_15 = 320'h0;
  parameter [319:0] INITVAL_16 = 320'h0;
  parameter [319:0] INITVAL_17 = 320'h0;
  parameter [319:0] INITVAL_18 = 320'h0;
  parameter [319:0] INITVAL_19 = 320'h0;
  parameter [319:0] INITVAL_1A = 320'h0;
  parameter [319:0] INITVAL_1B = 320'h0;
  parameter [319:0] INITVAL_1C = 320'h0;
  parameter [319:0] INITVAL_1D = 320'h0;
  parameter [319:0] INITVAL_1E = 320'h0;
  parameter [319:0] INITVAL_1F = 320'h0;
  parameter [319:0] INITVAL_20 = 320'h0;
  parameter [319:0] INITVAL_21 = 320'h0;
  parameter [319:0] INITVAL_22 = 320'h0;
  parameter [319:0] INITVAL_23 = 320'h0;
  parameter [319:0] INITVAL_24 = 320'h0;
  parameter [319:0] INITVAL_25 = 320'h0;
  parameter [319:0] INITVAL_26 = 320'h0;
  parameter [319:0] INITVAL_27 = 320'h0;
  parameter [319:0] INITVAL_28 = 320'h0;
  parameter [319:0] INITVAL_29 = 320'h0;
  parameter [319:0] INITVAL_2A = 320'h0;
  parameter [319:0] INITVAL_2B = 320'h0;
  parameter [319:0] INITVAL_2C = 320'h0;
  parameter [319:0] INITVAL_2D = 320'h0;
  parameter [319:0] INITVAL_2E = 320'h0;
  parameter [319:0] INITVAL_2F = 320'h0;
  parameter [319:0] INITVAL_30 = 320'h0;
  parameter [319:0] INITVAL_31 = 320'h0;
  parameter [319:0] INITVAL_32 = 320'h0;
  parameter [319:0] INITVAL_33 = 320'h0;
  parameter [319:0] INITVAL_34 = 320'h0;
  parameter [319:0] INITVAL_35 = 320'h0;
  parameter [319:0] INITVAL_36 = 320'h0;
  parameter [319:0] INITVAL_37 = 320'h0;
  parameter [319:0] INITVAL_38 = 320'h0;
  parameter [319:0] INITVAL_39 = 320'h0;
  parameter [319:0] INITVAL_3A = 320'h0;
  parameter [319:0] INITVAL_3B = 320'h0;
  parameter [319:0] INITVAL_3C = 320'h0;
  parameter [319:0] INITVAL_3D = 320'h0;
  parameter [319:0] INITVAL_3E = 320'h0;
  parameter [319:0] INITVAL_3F = 320'h0;

  function [319:0] initval(input [5:0] idx);
    case (idx)
      6'h00: initval = INITVAL_00;
      6'h01: initval = INITVAL_01;
      6'h02: initval = INITVAL_02;
      6'h03: initval = INITVAL_03;
      6'h04: initval = INITVAL_04;
      6'h05: initval = INITVAL_05;
      6'h06: initval = INITVAL_06;
      6'h07: initval = INITVAL_07;
      6'h08: initval = INITVAL_08;
      6'h09: initval = INITVAL_09;
      6'h0A: initval = INITVAL_0A;
      6'h0B: initval = INITVAL_0B;
      6'h0C: initval = INITVAL_0C;
      6'h0D: initval = INITVAL_0D;
      6'h0E: initval = INITVAL_0E;
      6'h0F: initval = INITVAL_0F;
      6'h10: initval = INITVAL_10;
      6'h11: initval = INITVAL_11;
      6'h12: initval = INITVAL_12;
      6'h13: initval = INITVAL_13;
      6'h14: initval = INITVAL_14;
      6'h15: initval = INITVAL_15;
      6'h16: initval = INITVAL_16;
      6'h17: initval = INITVAL_17;
      6'h18: initval = INITVAL_18;
      6'h19: initval = INITVAL_19;
      6'h1A: initval = INITVAL_1A;
      6'h1B: initval = INITVAL_1B;
      6'h1C: initval = INITVAL_1C;
      6'h1D: initval = INITVAL_1D;
      6'h1E: initval = INITVAL_1E;
      6'h1F: initval = INITVAL_1F;
      6'h20: initval = INITVAL_20;
      6'h21: initval = INITVAL_21;
      6'h22: initval = INITVAL_22;
      6'h23: initval = INITVAL_23;
      6'h24: initval = INITVAL_24;
      6'h25: initval = INITVAL_25;
      6'h26: initval = INITVAL_26;
      6'h27: initval = INITVAL_27;
      6'h28: initval = INITVAL_28;
      6'h29: initval = INITVAL_29;
      6'h2A: initval = INITVAL_2A;
      6'h2B: initval = INITVAL_2B;
      6'h2C: initval = INITVAL_2C;
      6'h2D: initval = INITVAL_2D;
      6'h2E: initval = INITVAL_2E;
      6'h2F: initval = INITVAL_2F;
      6'h30: initval = INITVAL_30;
      6'h31: initval = INITVAL_31;
      6'h32: initval = INITVAL_32;
      6'h33: initval = INITVAL_33;
      6'h34: initval = INITVAL_34;
      6'h35: initval = INITVAL_35;
      6'h36: initval = INITVAL_36;
      6'h37: initval = INITVAL_37;
      6'h38: initval = INITVAL_38;
      6'h39: initval = INITVAL_39;
      6'h3A: initval = INITVAL_3A;
      6'h3B: initval = INITVAL_3B;
      6'h3C: initval = INITVAL_3C;
      6'h3D: initval = INITVAL_3D;
      6'h3E: initval = INITVAL_3E;
      6'h3F: initval = INITVAL_3F;
    endcase
  endfunction

  // "0b101" -> 3'b101
  function [2:0] csdecode(input [8*5-1:0] text);
    csdecode = {text[23:16] == "1", text[15:8] == "1", text[7:0] == "1"};
  endfunction

  reg [17:0] mem [0:1023];
  integer i, j;
  reg [319:0] slice;
  initial begin
    for (i = 0; i < 64; i = i + 1) begin
      slice = initval(i);
      for (j = 0; j < 16; j = j + 1) mem[i * 16 + j] = slice[j * 20 +: 18];
    end
    if (CLKAMUX != "CLKA" && CLKAMUX != "INV" || CLKBMUX != "CLKB" && CLKBMUX != "INV"
        || OCEAMUX != "OCEA" && OCEAMUX != "INV" || OCEBMUX != "OCEB" && OCEBMUX != "INV"
        || CEAMUX != "CEA" || CEBMUX != "CEB" || WEAMUX != "WEA" || WEBMUX != "WEB" || RSTAMUX != "RSTA"
        || RSTBMUX != "RSTB" || (DATA_WIDTH_A == 36) != (DATA_WIDTH_B == 36)) begin
      $display("DP16KD %m: a parameter this model does not cover");
      $finish;
    end
  end

  wire clk_a = CLKAMUX == "INV" ? ~CLKA : CLKA;
  wire clk_b = CLKBMUX == "INV" ? ~CLKB : CLKB;
  wire oce_a = OCEAMUX == "INV" ? ~OCEA : OCEA;
  wire oce_b = OCEBMUX == "INV" ? ~OCEB : OCEB;
  wire sel_a = {CSA2, CSA1, CSA0} == csdecode(CSDECODE_A);
  wire sel_b = {CSB2, CSB1, CSB0} == csdecode(CSDECODE_B);
  wire [13:0] ad_a = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
  wire [13:0] ad_b = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
  wire [17:0] di_a = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [17:0] di_b = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
  localparam WIDE = DATA_WIDTH_A == 36;

  // the physical bit of data bit `n` of the 16,384-bit view (w = 1, 2, 4): bits [7:0] and [16:9] of each word
  function [4:0] data_bit(input [3:0] n);
    data_bit = n[3] ? 5'd9 + n[2:0] : {2'b0, n[2:0]};
  endfunction

  // The address pins count in bits of the 16,384-bit view whatever the width: a port of width w leaves the low
  // log2(w) pins (3 for w = 9, 4 for w = 18) out of its word address. So the w bits of w = 1, 2, 4 lie in one word.
  function [17:0] read_word(input integer w, input [13:0] ad);
    integer k;
    reg [17:0] word;
    begin
      read_word = 0;
      word = mem[ad[13:4]];
      if (w == 18) read_word = word;
      else if (w == 9) read_word = ad[3] ? word[17:9] : word[8:0];
      else for (k = 0; k < w; k = k + 1) read_word[k] = word[data_bit((ad & ~(w - 1)) + k)];
    end
  endfunction

  // the word at ad once a port of width w has written data there (the write enables of w = 18 in ad[1:0])
  function [17:0] written_word(input integer w, input [13:0] ad, input [17:0] data);
    integer k;
    begin
      written_word = mem[ad[13:4]];
      if (w == 18) begin
        if (ad[0]) written_word[8:0] = data[8:0];
        if (ad[1]) written_word[17:9] = data[17:9];
      end else if (w == 9) begin
        if (ad[3]) written_word[17:9] = data[8:0]; else written_word[8:0] = data[8:0];
      end else for (k = 0; k < w; k = k + 1) written_word[data_bit((ad & ~(w - 1)) + k)] = data[k];
    end
  endfunction

  // Both ports write with nonblocking assignments, so a read at the same edge sees the memory before it.
  reg [17:0] latch_a = 0, latch_b = 0, oreg_a = 0, oreg_b = 0, wide_lo = 0, wide_oreg_lo = 0;
  wire rst_a_async = RSTA && RESETMODE == "ASYNC";
  wire rst_b_async = RSTB && RESETMODE == "ASYNC";

  always @(posedge clk_a or posedge rst_a_async) begin
    if (RSTA) begin
      latch_a <= 0;
      oreg_a <= 0;
    end else begin
      if (REGMODE_A == "OUTREG" && oce_a) oreg_a <= latch_a;
      if (CEA && sel_a) begin
        if (WIDE) begin
          if (WEA) begin
            mem[{ad_a[13:5], 1'b0}] <= {ad_a[1] ? di_a[17:9] : mem[{ad_a[13:5], 1'b0}][17:9],
                                       ad_a[0] ? di_a[8:0] : mem[{ad_a[13:5], 1'b0}][8:0]};
            mem[{ad_a[13:5], 1'b1}] <= {ad_a[3] ? di_b[17:9] : mem[{ad_a[13:5], 1'b1}][17:9],
                                       ad_a[2] ? di_b[8:0] : mem[{ad_a[13:5], 1'b1}][8:0]};
          end
        end else begin
          if (!WEA || WRITEMODE_A == "READBEFOREWRITE") latch_a <= read_word(DATA_WIDTH_A, ad_a);
          else if (WRITEMODE_A == "WRITETHROUGH") latch_a <= di_a;
          if (WEA) mem[ad_a[13:4]] <= written_word(DATA_WIDTH_A, ad_a, di_a);
        end
      end
    end
  end

  always @(posedge clk_b or posedge rst_b_async) begin
    if (RSTB) begin
      latch_b <= 0;
      oreg_b <= 0;
      wide_lo <= 0;
      wide_oreg_lo <= 0;
    end else begin
      if (REGMODE_B == "OUTREG" && oce_b) begin
        oreg_b <= latch_b;
        wide_oreg_lo <= wide_lo;
      end
      if (CEB && sel_b) begin
        if (WIDE) begin
          wide_lo <= mem[{ad_b[13:5], 1'b0}];
          latch_b <= mem[{ad_b[13:5], 1'b1}];
        end else begin
          if (!WEB || WRITEMODE_B == "READBEFOREWRITE") latch_b <= read_word(DATA_WIDTH_B, ad_b);
          else if (WRITEMODE_B == "WRITETHROUGH") latch_b <= di_b;
          if (WEB) mem[ad_b[13:4]] <= written_word(DATA_WIDTH_B, ad_b, di_b);
        end
      end
    end
  end

  // in the 36-bit mode port B's one read (and its output register, REGMODE_B) drives both ports' data pins
  wire [17:0] do_a = WIDE ? (REGMODE_B == "OUTREG" ? wide_oreg_lo : wide_lo) : (REGMODE_A == "OUTREG" ? oreg_a : latch_a);
  wire [17:0] do_b = REGMODE_B == "OUTREG" ? oreg_b : latch_b;
  assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = do_a;
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = do_b;
endmodule
