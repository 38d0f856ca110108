-- Reserved for the runner work; replaced by its real content.
select 1;
