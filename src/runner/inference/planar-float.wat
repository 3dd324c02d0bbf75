;; A decoded image's uint8 RGB pixels (interleaved, HWC) to a model's float32 input planes (CHW):
;; x / 255, then (x - mean) / std when `normalize` is set, each step in float32 as torchvision's
;; ToTensor and Normalize and the runner's hwcToChw compute it (IEEE float32 division and
;; subtraction round correctly in SIMD lanes as in scalar code: the same values bit for bit).
;; Sixteen pixels a pass: three 16-byte loads deinterleaved by shuffles into one vector of each
;; channel, each widened to four vectors of floats; the last pixels of an image (fewer than
;; sixteen) one at a time.
(module
  (memory (export "memory") 1)

  ;; Four pixel values (u32 lanes) -> floats.
  (func $scale (param $v v128) (param $mean v128) (param $std v128) (param $normalize i32) (result v128)
    (local $x v128)
    (local.set $x (f32x4.div (f32x4.convert_i32x4_u (local.get $v)) (f32x4.splat (f32.const 255))))
    (if (result v128) (local.get $normalize)
      (then (f32x4.div (f32x4.sub (local.get $x) (local.get $mean)) (local.get $std)))
      (else (local.get $x))))

  ;; Sixteen values of one channel (u8 lanes) -> sixteen floats at $out.
  (func $store16 (param $v v128) (param $out i32) (param $mean v128) (param $std v128) (param $normalize i32)
    (local $lo v128) (local $hi v128)
    (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
    (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
    (v128.store offset=0 (local.get $out)
      (call $scale (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $mean) (local.get $std) (local.get $normalize)))
    (v128.store offset=16 (local.get $out)
      (call $scale (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $mean) (local.get $std) (local.get $normalize)))
    (v128.store offset=32 (local.get $out)
      (call $scale (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $mean) (local.get $std) (local.get $normalize)))
    (v128.store offset=48 (local.get $out)
      (call $scale (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $mean) (local.get $std) (local.get $normalize))))

  ;; One value, scalar: the pixels after the last whole pass.
  (func $one (param $v i32) (param $mean f32) (param $std f32) (param $normalize i32) (result f32)
    (local $x f32)
    (local.set $x (f32.div (f32.convert_i32_u (local.get $v)) (f32.const 255)))
    (if (result f32) (local.get $normalize)
      (then (f32.div (f32.sub (local.get $x) (local.get $mean)) (local.get $std)))
      (else (local.get $x))))

  ;; $pixels pixels at $src (3 bytes each) -> three planes of $pixels floats from $dst.
  (func (export "toPlanar") (param $src i32) (param $pixels i32) (param $dst i32)
    (param $m0 f32) (param $m1 f32) (param $m2 f32) (param $s0 f32) (param $s1 f32) (param $s2 f32) (param $normalize i32)
    (local $p i32) (local $o i32) (local $end i32) (local $plane i32) (local $i i32)
    (local $a v128) (local $b v128) (local $c v128)
    (local $vm0 v128) (local $vm1 v128) (local $vm2 v128) (local $vs0 v128) (local $vs1 v128) (local $vs2 v128)
    (local.set $vm0 (f32x4.splat (local.get $m0)))
    (local.set $vm1 (f32x4.splat (local.get $m1)))
    (local.set $vm2 (f32x4.splat (local.get $m2)))
    (local.set $vs0 (f32x4.splat (local.get $s0)))
    (local.set $vs1 (f32x4.splat (local.get $s1)))
    (local.set $vs2 (f32x4.splat (local.get $s2)))
    (local.set $plane (i32.mul (local.get $pixels) (i32.const 4)))
    (local.set $p (local.get $src))
    (local.set $o (local.get $dst))
    ;; Where the whole passes end in the first plane.
    (local.set $end (i32.add (local.get $dst) (i32.mul (i32.and (local.get $pixels) (i32.const -16)) (i32.const 4))))
    (block $done (loop $pass
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $a (v128.load offset=0 (local.get $p)))
      (local.set $b (v128.load offset=16 (local.get $p)))
      (local.set $c (v128.load offset=32 (local.get $p)))
      ;; Channel k is bytes k, k + 3, ...: eleven (or ten) from $a and $b, the rest from $c.
      (call $store16
        (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 17 20 23 26 29
          (i8x16.shuffle 0 3 6 9 12 15 18 21 24 27 30 0 0 0 0 0 (local.get $a) (local.get $b)) (local.get $c))
        (local.get $o) (local.get $vm0) (local.get $vs0) (local.get $normalize))
      (call $store16
        (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 18 21 24 27 30
          (i8x16.shuffle 1 4 7 10 13 16 19 22 25 28 31 0 0 0 0 0 (local.get $a) (local.get $b)) (local.get $c))
        (i32.add (local.get $o) (local.get $plane)) (local.get $vm1) (local.get $vs1) (local.get $normalize))
      (call $store16
        (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 16 19 22 25 28 31
          (i8x16.shuffle 2 5 8 11 14 17 20 23 26 29 0 0 0 0 0 0 (local.get $a) (local.get $b)) (local.get $c))
        (i32.add (local.get $o) (i32.shl (local.get $plane) (i32.const 1))) (local.get $vm2) (local.get $vs2) (local.get $normalize))
      (local.set $p (i32.add (local.get $p) (i32.const 48)))
      (local.set $o (i32.add (local.get $o) (i32.const 64)))
      (br $pass)))
    (local.set $i (i32.and (local.get $pixels) (i32.const -16)))
    (block $tailDone (loop $tail
      (br_if $tailDone (i32.ge_u (local.get $i) (local.get $pixels)))
      (f32.store (local.get $o)
        (call $one (i32.load8_u offset=0 (local.get $p)) (local.get $m0) (local.get $s0) (local.get $normalize)))
      (f32.store (i32.add (local.get $o) (local.get $plane))
        (call $one (i32.load8_u offset=1 (local.get $p)) (local.get $m1) (local.get $s1) (local.get $normalize)))
      (f32.store (i32.add (local.get $o) (i32.shl (local.get $plane) (i32.const 1)))
        (call $one (i32.load8_u offset=2 (local.get $p)) (local.get $m2) (local.get $s2) (local.get $normalize)))
      (local.set $p (i32.add (local.get $p) (i32.const 3)))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $tail))))
)
